// The lab's pure parts: settings decoded once (rates, percents, times), lab definitions checked with their YAML
// paths, an instance's addresses moved into its own block wherever they are written, graphs escaped for their
// format, and the class table safe to open in a spreadsheet.
import { assert, describe, it } from "@effect/vitest"
import { NodeServices } from "@effect/platform-node"
import { EventBus } from "@testbed/events"
import { Effect, Layer, Schema } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as ClassTable from "../src/ClassTable.ts"
import { Docker } from "../src/Docker.ts"
import * as Graph from "../src/Graph.ts"
import * as Impairment from "../src/Impairment.ts"
import { localize } from "../src/internal/instance.ts"
import { lossTolerance } from "../src/internal/verify.ts"
import * as Stage from "../src/Stage.ts"
import { Stages } from "../src/Stages.ts"
import { fixtures } from "./paths.ts"

const courseLab = () => readFileSync(join(fixtures, "stages", "course-lab", "stage.yaml"), "utf8")

describe("impairment settings", () => {
  it("decode rates, percents and times once, into numbers", () => {
    const s = Schema.decodeUnknownSync(Impairment.Settings)({
      rate: "2mbit",
      loss: "5%",
      delay: "20ms",
      jitter: "1.5 seconds",
      reorder: 1
    })
    assert.deepStrictEqual(s, { rate: 2e6, loss: 5, delay: 20, jitter: 1500, reorder: 1 })
    assert.strictEqual(Impairment.describe(s), "rate 2mbit, loss 5%, delay 20ms ±1500ms, reorder 1%")
    assert.strictEqual(Schema.decodeUnknownSync(Impairment.Rate)("100kbps"), 800_000)
    assert.deepStrictEqual(Schema.decodeUnknownSync(Impairment.FlapSpec)("2s,500ms,3"), {
      down: 2000,
      up: 500,
      count: 3
    })
    for (const bad of [{ rate: "fast" }, { loss: "150%" }, { delay: "soon" }, { loss: "-1" }]) {
      assert.isTrue(Schema.decodeUnknownResult(Impairment.Settings)(bad)._tag === "Failure", JSON.stringify(bad))
    }
    assert.isTrue(Impairment.needsNetem(s))
    assert.isFalse(Impairment.needsNetem({ rate: 1, loss: 2, down: true }))
  })

  it("loss is judged against the binomial: four standard deviations plus one probe", () => {
    // 500 probes at 20%: sd = sqrt(0.2 * 0.8 / 500) = 1.79 points.
    assert.closeTo(lossTolerance(20, 500), 4 * 1.7889 + 0.2, 0.01)
    assert.strictEqual(lossTolerance(0, 500), 0.2)
  })
})

describe("lab definitions", () => {
  it.effect("the course lab decodes, links and checks included", () =>
    Effect.gen(function* () {
      const stage = yield* Stage.decodeYaml(courseLab(), "course-lab")
      assert.strictEqual(stage.checks?.length, 6)
      assert.strictEqual(stage.instances?.pool, "10.232.0.0/16")
    })
  )

  it.effect("links, impairments and checks that name nothing are reported by path", () =>
    Effect.gen(function* () {
      const text = `${courseLab()}
links:
  - { a: { node: router, interface: eth0 }, b: { node: ghost, interface: p1, address: 10.0.0.1/33 } }
impairments:
  - { target: "nobody:eth0", loss: 5% }
`
        .replace("reach: { from: client1, to: client2 }", "reach: { from: client1, to: nowhere, protocol: tcp }")
        .replace('matches: "^1$"', 'matches: "(a)\\\\1"')
      const error = yield* Effect.flip(Stage.decodeYaml(text, "stage.yaml"))
      const paths = error.problems.map((p) => p.path)
      for (const path of ["links[0].b.address", "checks[3].command.matches"]) assert.include(paths, path)
      const second = yield* Effect.flip(
        Stage.decodeYaml(text.replace("10.0.0.1/33", "10.0.0.1/30").replace("(a)\\\\1", "^1$"), "stage.yaml")
      )
      const problems = second.problems.map((p) => `${p.path}: ${p.message}`)
      assert.includeMembers(problems, [
        "links[0].a.interface: eth0 is the engine's; name link ends otherwise",
        "links[0].b.node: no node ghost",
        "impairments[0].target: no node nobody",
        "checks[0].reach.to: nowhere is neither a node nor an IPv4 address",
        "checks[0].reach.port: a tcp reach check needs a port"
      ])
    })
  )
})

describe("instances", () => {
  it.effect("each instance gets its own block of the pool, its addresses moved wherever they are written", () =>
    Effect.gen(function* () {
      const stage = yield* Stage.decodeYaml(courseLab(), "course-lab")
      const loaded = { stage, source: "x", baseDir: "/" }
      const second = (yield* localize(loaded, "bob", 1)).stage
      // The lab spans 10.231.20.0/22: block 1 of 10.232.0.0/16 is 10.232.4.0/22.
      assert.strictEqual(second.networks?.net1?.subnet, "10.232.5.0/24")
      assert.deepStrictEqual(
        second.nodes.router?.networks?.map((a) => a.address),
        ["10.232.5.254", "10.232.6.254"]
      )
      assert.include(second.nodes.client1?.command?.join(" ") ?? "", "ip route add 10.232.6.0/24 via 10.232.5.254")
      const route = second.checks?.find((c) => "route" in c)
      assert.deepStrictEqual(route && "route" in route ? route.route : undefined, {
        node: "client1",
        to: "10.232.6.0/24",
        via: "10.232.5.254"
      })
      const full = yield* Effect.flip(localize(loaded, "zed", 64))
      assert.include(full.message, "has room for 64 instances")
      const noPool = yield* Effect.flip(
        localize({ ...loaded, stage: { ...stage, instances: undefined } } as never, "a", 0)
      )
      assert.include(noPool.message, "instances: { pool:")
    })
  )
})

describe("graph and class table", () => {
  const topology: Graph.Topology = {
    name: 'lab "1"',
    networks: [{ name: "net<1>", subnet: "10.0.0.0/24" }],
    nodes: [
      { name: 'a"b', addresses: { "net<1>": "10.0.0.2" } },
      { name: "c", addresses: {} }
    ],
    links: [{ a: { node: 'a"b', iface: "p1", address: "10.9.0.1/30" }, b: { node: "c", iface: "p1" } }],
    impairments: { "c:p1": "loss 5%" }
  }

  it("every name is escaped for its format", () => {
    const mermaid = Graph.mermaid(topology)
    assert.include(mermaid, 'n0["a#quot;b"]')
    assert.include(mermaid, "c:p1 [loss 5%]")
    const dot = Graph.dot(topology)
    assert.include(dot, 'graph "lab \\"1\\""')
    const svg = Graph.svg(topology)
    assert.include(svg, "net&lt;1&gt;")
    assert.notInclude(svg, "<1>")
  })

  it("the class table scores each instance; a cell never starts a formula", () => {
    const cells = [
      { instance: "alice", check: "ping", passed: true, detail: "" },
      { instance: "alice", check: "=cmd()", passed: false, detail: "" },
      { instance: 'bob "b"', check: "ping", passed: false, detail: "<x>" }
    ]
    assert.strictEqual(
      ClassTable.csv(cells),
      '"instance","ping","\'=cmd()","passed","total"\r\n"alice","passed","failed","1","2"\r\n"bob ""b""","failed","","0","2"\r\n'
    )
    assert.include(ClassTable.page("class", cells), 'title="&lt;x&gt;"')
  })
})

describe("instance names", () => {
  it.effect("an instance name that would leave the state directory is refused before anything is done", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Stages.use((s) => s.status()).pipe(
          Effect.provide(
            Stages.layer({ catalog: "/nowhere", stateDir: "/tmp/testbed-never-made", instance: "../../etc" }).pipe(
              Layer.provide(Layer.mergeAll(Docker.layer, EventBus.EventBus.layer, NodeServices.layer))
            )
          )
        )
      )
      assert.strictEqual(error._tag, "InvalidStageName")
    })
  )
})
