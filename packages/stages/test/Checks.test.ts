// Graded checks against the real engine: the course lab's checks pass with its reference router and fail when the
// router does not forward; a run with passing and failing checks renders in all five report formats (the HTML with
// the lab's graph); two instances of the lab run side by side, each graded, in a class table.
import { assert, describe, it } from "@effect/vitest"
import { ReportWriter } from "@testbed/reports"
import { Effect } from "effect"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as HostSettings from "../src/HostSettings.ts"
import { type CheckRun, Stages, type Status } from "../src/Stages.ts"
import { engineAvailable, leftovers, sandbox, stagesLayer } from "./support.ts"

/** The course lab on this test's own subnets, its instance pool moved to a /16 no other test uses. */
const courseLab = (edit: (text: string) => string = (t) => t) => {
  const pool = `10.${150 + Math.floor(Math.random() * 50)}.0.0/16`
  return sandbox(["course-lab"], (text) =>
    edit(
      text.replaceAll("10.231.21.", "10.231.11.").replaceAll("10.231.22.", "10.231.12.").replace("10.232.0.0/16", pool)
    )
  )
}

const statuses = (run: CheckRun) => Object.fromEntries(run.outcomes.map((o) => [`${o.instance}/${o.check}`, o.passed]))

describe.skipIf(!engineAvailable)("stage checks (real Docker)", () => {
  it.live(
    "the course lab passes with its router, fails without it, and every run renders in all five formats",
    () => {
      const box = courseLab()
      return Effect.gen(function* () {
        const stages = yield* Stages
        const icmpBefore = yield* HostSettings.readSysctl("net.ipv4.icmp_echo_ignore_all")
        yield* stages.up(yield* stages.load("course-lab"))
        const good = yield* stages.check({ output: join(box.dir, "good") })
        assert.deepStrictEqual(
          good.outcomes.filter((o) => !o.passed).map((o) => `${o.check}: ${o.detail}`),
          []
        )
        assert.strictEqual(good.outcomes.length, 6)
        const status = yield* stages.status()
        assert.deepStrictEqual(status.impairments, {}, "the break-fix check put the router's side back")

        // The same lab with a router that does not forward (a student's unfinished one).
        const loaded = yield* stages.load("course-lab")
        const router = loaded.stage.nodes.router
        assert.isDefined(router)
        const broken = {
          ...loaded,
          stage: {
            ...loaded.stage,
            nodes: { ...loaded.stage.nodes, router: { ...router!, sysctls: { "net.ipv4.ip_forward": "0" } } }
          }
        }
        yield* stages.up(broken)
        // The same checks from a checks file, with shorter bounds: failing checks wait their bound out.
        const text = readFileSync(join(box.catalog, "course-lab", "stage.yaml"), "utf8")
        const checksFile = join(box.dir, "checks.yaml")
        writeFileSync(
          checksFile,
          text.slice(text.indexOf("checks:")).replaceAll(/within: \d+ seconds/g, "within: 4 seconds")
        )
        const bad = yield* stages.check({ output: join(box.dir, "bad"), checksFile })
        assert.deepStrictEqual(statuses(bad), {
          "default/client1 reaches client2": false,
          "default/client2 reaches client1": false,
          "default/client1 routes net2 through the router": true,
          "default/the router forwards": false,
          "default/the host stays out of it": true,
          "default/losing the router's net2 side cuts client1 off, and it recovers": false
        })
        const written = yield* ReportWriter.renderDirectory(bad.output, { generatedAt: "2026-12-03T00:00:00.000Z" })
        assert.strictEqual(written.length, 5)
        const junit = readFileSync(join(bad.output, "junit.xml"), "utf8")
        assert.include(junit, 'failures="4"')
        assert.include(junit, "client1 routes net2 through the router")
        const markdown = readFileSync(join(bad.output, "EXPERIMENT_REPORT.md"), "utf8")
        assert.include(markdown, "does not answer ICMP echo")
        const ctrf = JSON.parse(readFileSync(join(bad.output, "ctrf-report.json"), "utf8"))
        assert.strictEqual(ctrf.results.summary.passed, 2)
        const json = JSON.parse(readFileSync(join(bad.output, "experiment_summary.json"), "utf8"))
        assert.strictEqual(json.tests.failed, 4)
        const html = readFileSync(join(bad.output, "report.html"), "utf8")
        assert.include(html, "the host stays out of it")
        assert.include(html, "data:image/svg+xml;base64,")
        yield* stages.down()
        assert.strictEqual(yield* HostSettings.readSysctl("net.ipv4.icmp_echo_ignore_all"), icmpBefore)
        assert.deepStrictEqual(yield* leftovers(stages.namespace), { containers: 0, networks: 0 })
      }).pipe(
        Effect.ensuring(Effect.ignore(Stages.use((s) => Effect.andThen(s.down(), s.prune())))),
        Effect.provide(stagesLayer(box)),
        Effect.ensuring(Effect.sync(() => box.cleanup()))
      )
    },
    300_000
  )

  it.live(
    "two instances of the lab side by side, graded with one run into a class table",
    () => {
      const box = courseLab((text) =>
        text.replace("within: 15 seconds", "within: 15 seconds\n    description: break-fix")
      )
      const layer = (instance: string) =>
        Effect.provide(Stages.layer({ catalog: box.catalog, stateDir: box.stateDir, concurrency: 4, instance }))
      return Effect.gen(function* () {
        const icmpBefore = yield* HostSettings.readSysctl("net.ipv4.icmp_echo_ignore_all")
        const upAs = (instance: string) =>
          Stages.use((s) => Effect.flatMap(s.load("course-lab"), (loaded) => s.up(loaded))).pipe(layer(instance))
        const alice = yield* upAs("alice")
        const bob = yield* upAs("bob")
        assert.notStrictEqual(alice.runId, bob.runId)
        const stages = yield* Stages
        const up = yield* stages.upNow()
        assert.deepStrictEqual(up.map((c) => [c.instance, c.slot]).sort(), [
          ["alice", 0],
          ["bob", 1]
        ])
        const aliceStatus = yield* Stages.use((s) => s.status()).pipe(layer("alice"))
        const bobStatus = yield* Stages.use((s) => s.status()).pipe(layer("bob"))
        const address = (s: Status, node: string) => s.nodes.find((n) => n.node === node)?.addresses.net1
        assert.notStrictEqual(address(aliceStatus, "client1"), address(bobStatus, "client1"))
        assert.isTrue(aliceStatus.nodes.every((n) => n.container.startsWith("course-lab-alice-")))

        const run = yield* stages.check({ stage: "course-lab", output: join(box.dir, "class") })
        assert.deepStrictEqual(run.instances, ["alice", "bob"])
        assert.isTrue(
          run.outcomes.every((o) => o.passed),
          JSON.stringify(run.outcomes.filter((o) => !o.passed))
        )
        const csv = readFileSync(join(run.output, "class.csv"), "utf8").trim().split("\r\n")
        assert.strictEqual(csv.length, 3)
        assert.match(csv[1] ?? "", /^"alice",("passed",){6}"6","6"$/)
        assert.isTrue(existsSync(join(run.output, "class.html")))
        yield* ReportWriter.renderDirectory(run.output, { generatedAt: "2026-12-03T00:00:00.000Z" })
        assert.include(readFileSync(join(run.output, "report.html"), "utf8"), "Interop matrix")

        // Down in the order they came up: the host setting both changed is restored by the last one only.
        yield* Stages.use((s) => s.down()).pipe(layer("alice"))
        assert.strictEqual(yield* HostSettings.readSysctl("net.ipv4.icmp_echo_ignore_all"), "1")
        yield* Stages.use((s) => s.down()).pipe(layer("bob"))
        assert.strictEqual(yield* HostSettings.readSysctl("net.ipv4.icmp_echo_ignore_all"), icmpBefore)
        assert.deepStrictEqual(yield* leftovers(stages.namespace), { containers: 0, networks: 0 })
      }).pipe(
        Effect.ensuring(
          Effect.ignore(
            Effect.all([
              Stages.use((s) => s.down()).pipe(layer("alice")),
              Stages.use((s) => s.down()).pipe(layer("bob")),
              Stages.use((s) => s.prune())
            ])
          )
        ),
        Effect.provide(stagesLayer(box)),
        Effect.ensuring(Effect.sync(() => box.cleanup()))
      )
    },
    300_000
  )
})
