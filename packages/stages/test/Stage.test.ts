import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Path, Schema } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import * as Plan from "../src/internal/plan.ts"
import * as Stage from "../src/Stage.ts"
import { fixtures } from "./paths.ts"

const fixture = (name: string) => readFileSync(join(fixtures, "stages", name, "stage.yaml"), "utf8")

describe("Stage", () => {
  it.effect("decodes the routing-lab fixture", () =>
    Effect.gen(function* () {
      const stage = yield* Stage.decodeYaml(fixture("routing-lab"), "routing-lab")
      assert.strictEqual(stage.name, "routing-lab")
      assert.deepStrictEqual(Object.keys(stage.nodes), ["client1", "client2"])
      assert.deepStrictEqual(stage.nodes.client1?.capabilities, ["NET_ADMIN", "NET_RAW"])
      assert.deepStrictEqual(stage.networks?.net1, { subnet: "10.231.1.0/24", gateway: "10.231.1.1", internal: true })
    })
  )

  it.effect("a bad definition fails with the YAML path of every problem", () =>
    Effect.gen(function* () {
      const text = fixture("routing-lab")
        .replace("address: 10.231.1.10", "address: 10.231.1")
        .replace("capabilities: [NET_ADMIN, NET_RAW]", "capabilites: [NET_ADMIN, NET_RAW]")
      const error = yield* Effect.flip(Stage.decodeYaml(text, "stage.yaml"))
      assert.strictEqual(error._tag, "StageInvalid")
      const paths = error.problems.map((p) => p.path)
      assert.include(paths, "nodes.client1.networks[0].address")
      assert.include(paths, "nodes.client1.capabilites")
      assert.include(error.message, "at nodes.client1.networks[0].address")
    })
  )

  it.effect("references to unknown networks and nodes are reported by path", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Stage.decode(
          {
            name: "lab",
            networks: { a: {} },
            nodes: { n1: { image: "x", networks: [{ network: "b" }] }, n2: {} },
            hooks: { up: [{ node: "n3", command: ["true"] }] },
            host: { interfaces: [{ network: "c", arp: false }] }
          },
          "inline"
        )
      )
      assert.deepStrictEqual(
        error.problems.map((p) => p.path),
        ["nodes.n1.networks[0].network", "nodes.n2", "hooks.up[0].node", "host.interfaces[0].network"]
      )
    })
  )

  it.effect("not YAML at all is a StageInvalid too", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Stage.decodeYaml("nodes: [unclosed", "broken.yaml"))
      assert.strictEqual(error._tag, "StageInvalid")
      assert.include(error.message, "not YAML")
    })
  )

  it.effect("names with path separators or .. are refused", () =>
    Effect.gen(function* () {
      for (const bad of ["../x", "a/b", "..", "a..b", ".hidden", "", "a\\b", "x".repeat(64)]) {
        const error = yield* Effect.flip(Stage.validateName(bad))
        assert.strictEqual(error._tag, "InvalidStageName", bad)
      }
      for (const good of ["routing-lab", "stage1", "lab_2.v3"])
        assert.strictEqual(yield* Stage.validateName(good), good)
      const error = yield* Effect.flip(Stage.decode({ name: "../x", nodes: {} }, "inline"))
      assert.deepStrictEqual(
        error.problems.map((p) => p.path),
        ["name"]
      )
    })
  )

  it.effect.prop("every accepted name is a single safe path segment", [Schema.String], ([name]) =>
    Effect.sync(() => {
      if (Stage.isValidName(name)) {
        assert.isFalse(name.includes("/") || name.includes("\\") || name.includes(".."))
        assert.isFalse(name.startsWith("."))
      }
    })
  )

  it.effect("durations (every TimeSpan form: seconds, 2s, 1m30s, Effect's) and readiness conditions decode", () =>
    Effect.gen(function* () {
      const stage = yield* Stage.decode(
        {
          name: "lab",
          nodes: {
            web: {
              image: "x",
              healthcheck: { test: ["true"], interval: "2s", timeout: 1.5 },
              ready: [
                { healthy: true },
                { log: "up", timeout: "1m30s" },
                { tcp: 80 },
                { command: ["true"], timeout: "5 seconds" }
              ]
            }
          }
        },
        "inline"
      )
      const web = stage.nodes.web!
      assert.strictEqual(web.ready?.length, 4)
      assert.deepStrictEqual(
        [web.healthcheck?.interval, web.healthcheck?.timeout, web.ready?.[1]?.timeout, web.ready?.[3]?.timeout].map(
          (duration) => (duration === undefined ? undefined : Duration.toMillis(duration))
        ),
        [2000, 1500, 90_000, 5000]
      )
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a bad duration names its path and value", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Stage.decode({ name: "lab", nodes: { web: { image: "x", ready: [{ tcp: 80, timeout: "soon" }] } } }, "inline")
      )
      // (The readiness union also lists the alternatives it is not: issue 15's "name the branch meant".)
      assert.deepInclude(
        error.problems.map((p) => [p.path, p.message]),
        [
          "nodes.web.ready[0].timeout",
          `not a duration: "soon" (use seconds, or e.g. "2s", "500ms", "1m30s", "2 minutes")`
        ]
      )
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("subnets and addresses are checked as the engine would: /33, host bits, octets, outside the subnet", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Stage.decode(
          {
            name: "lab",
            networks: {
              a: { subnet: "10.1.2.0/33" },
              b: { subnet: "10.1.2.5/24" },
              c: { subnet: "10.1.256.0/24" },
              d: { subnet: "10.9.0.0/16", gateway: "10.8.0.1" },
              e: { gateway: "10.1.1.1" }
            },
            nodes: { n: { image: "x", networks: [{ network: "a", address: "10.1.2.300" }] } }
          },
          "inline"
        )
      )
      assert.deepStrictEqual(
        error.problems.map((p) => [p.path, p.message]),
        [
          ["networks.a.subnet", "prefix /33 is longer than 32 bits"],
          ["networks.b.subnet", "host bits are set: the subnet is 10.1.2.0/24"],
          ["networks.c.subnet", "expected an IPv4 subnet a.b.c.d/n"],
          ["nodes.n.networks[0].address", "expected an IPv4 address (a.b.c.d, 0–255)"]
        ]
      )
      const cross = yield* Effect.flip(
        Stage.decode(
          {
            name: "lab",
            networks: { d: { subnet: "10.9.0.0/16", gateway: "10.8.0.1" }, e: { gateway: "10.1.1.1" } },
            nodes: {
              n: {
                image: "x",
                networks: [{ network: "d", address: "10.10.0.1" }],
                mounts: [{ source: "~bob/x", target: "/x" }]
              }
            }
          },
          "inline"
        )
      )
      assert.deepStrictEqual(
        cross.problems.map((p) => [p.path, p.message]),
        [
          ["networks.d.gateway", "10.8.0.1 is not in 10.9.0.0/16"],
          ["networks.e.gateway", "a gateway needs a subnet"],
          ["nodes.n.networks[0].address", "10.10.0.1 is not in 10.9.0.0/16"],
          ["nodes.n.mounts[0].source", "only ~ and ~/… are expanded (to your home)"]
        ]
      )
      const fine = yield* Stage.decode(
        {
          name: "lab",
          networks: { w: { subnet: "0.0.0.0/0" }, h: { subnet: "10.0.0.7/32" } },
          nodes: { n: { image: "x" } }
        },
        "inline"
      )
      assert.strictEqual(fine.networks?.h?.subnet, "10.0.0.7/32")
    })
  )

  it.effect("a stage without nodes, an empty file and a list are refused", () =>
    Effect.gen(function* () {
      const none = yield* Effect.flip(Stage.decode({ name: "lab", nodes: {} }, "inline"))
      assert.deepStrictEqual(
        none.problems.map((p) => [p.path, p.message]),
        [["nodes", "a stage needs at least one node"]]
      )
      assert.include((yield* Effect.flip(Stage.decodeYaml("", "empty.yaml"))).message, "the file is empty")
      assert.include((yield* Effect.flip(Stage.decodeYaml("- a\n- b\n", "list.yaml"))).message, "found a list")
    })
  )

  it.effect("~ and ~/… mounts are the home directory, other sources relative to the definition", () =>
    Effect.gen(function* () {
      const loaded = {
        source: "/labs/x/stage.yaml",
        baseDir: "/labs/x",
        stage: {
          name: "x",
          nodes: {
            n: {
              image: "busybox",
              mounts: [
                { source: "~/src", target: "/a" },
                { source: "~", target: "/b" },
                { source: "src", target: "/c" },
                { source: "/abs", target: "/d" }
              ]
            }
          }
        }
      } satisfies Stage.Loaded
      const plan = Plan.make(loaded, "ns", "run", yield* Path.Path, { home: "/home/student" })
      assert.deepStrictEqual(plan.nodes[0]?.spec.binds, [
        "/home/student/src:/a",
        "/home/student:/b",
        "/labs/x/src:/c",
        "/abs:/d"
      ])
    }).pipe(Effect.provide(Path.layer))
  )
})
