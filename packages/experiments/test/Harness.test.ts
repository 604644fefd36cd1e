// The harness's logic — test and experiment timeouts, crashes, retries, fast-fail, steps — on the fake environment
// of @testbed/plugins and the scripted runner of @testbed/commands, on TestClock: no process is started and no test
// waits for real time. The same fixtures run for real in ExperimentManager.test.ts (integration).
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ScriptedRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import type { FakeEnvironment } from "@testbed/plugins"
import { Effect, FileSystem, Layer } from "effect"
import { Experiment, ExperimentManager } from "../src/index.ts"
import { type Ran, runOnFake } from "./fake.ts"
import { fixtures } from "./support.ts"

/** The script by `<test>/<service>`; anything not named runs until stopped. */
const byId =
  (entries: Record<string, FakeEnvironment.ProcessScript>): FakeEnvironment.Script =>
  (launch) =>
    entries[launch.id] ?? {}

const statuses = (ran: Ran) => ran.result.tests.map((test) => [test.name, test.status])

describe("the harness on a fake environment (TestClock)", () => {
  it.effect("a crashing server fails its test with the reason, its client is stopped, the other test passes", () =>
    Effect.gen(function* () {
      const ran = yield* runOnFake(
        "cases/crash.yaml",
        byId({
          "crashing server/server": { exitAfter: "1 second", exitCode: 3, stderr: "boom\n" },
          "healthy pair/server": { stdout: "echo server listening on 127.0.0.1\n" },
          "healthy pair/client": { exitAfter: "200 millis", stdout: "echo ok: 3 messages\n" }
        })
      )
      const byName = new Map(ran.result.tests.map((test) => [test.name, test]))
      assert.strictEqual(byName.get("healthy pair")?.status, "passed")
      assert.strictEqual(byName.get("crashing server")?.status, "failed")
      assert.strictEqual(byName.get("crashing server")?.reason, "server (exec) ended on its own: exit code 3")
      const exited = ran.events.flatMap((e) =>
        e.type === "service.exited" && e.data.test === "crashing server" ? [[e.data.service, e.data.crashed]] : []
      )
      assert.deepStrictEqual(exited.sort(), [
        ["client", false],
        ["server", true]
      ])
    })
  )

  it.effect("a server that cannot be launched fails its test with the launch's reason; its machine ends in ERROR", () =>
    Effect.gen(function* () {
      const ran = yield* runOnFake(
        "cases/crash.yaml",
        byId({ "crashing server/server": { cannotStart: "no such program" } }),
        { overrides: { filter: "crashing" } }
      )
      const byName = new Map(ran.result.tests.map((test) => [test.name, test]))
      assert.strictEqual(byName.get("crashing server")?.status, "failed")
      assert.include(byName.get("crashing server")?.reason ?? "", "no such program")
      const moves = ran.events.flatMap((e) =>
        e.type === "service.state_changed" && e.entityId === "crashing server/server"
          ? [[e.data.to, e.data.trigger]]
          : []
      )
      assert.deepInclude(moves, ["ERROR", "launch failed"])
      assert.deepStrictEqual(moves.at(-1), ["DESTROYED", "never started"])
    })
  )

  it.effect("hung services time out at the readiness, test and service levels", () =>
    Effect.gen(function* () {
      const ran = yield* runOnFake("cases/hang.yaml", byId({ "never ready/server": { listening: false } }))
      const byName = new Map(ran.result.tests.map((test) => [test.name, test]))
      assert.strictEqual(byName.get("never ready")?.status, "timeout")
      assert.match(byName.get("never ready")?.reason ?? "", /not ready after 1s: port 127\.0\.0\.1:\d+ not listening/)
      assert.strictEqual(byName.get("hung client")?.status, "timeout")
      assert.match(byName.get("hung client")?.reason ?? "", /^test timed out after 2s \(in [A-Z_]+\)$/)
      assert.strictEqual(byName.get("slow task")?.status, "timeout")
      assert.include(byName.get("slow task")?.reason ?? "", "still running after its timeout of 1s")
    })
  )

  it.effect("the experiment's timeout ends the running test as timeout and skips the rest", () =>
    Effect.gen(function* () {
      const ran = yield* runOnFake(
        "cases/experiment-timeout.yaml",
        byId({ "never reached/client": { exitAfter: "10 millis" } })
      )
      assert.strictEqual(ran.result.status, "finished_early")
      assert.strictEqual(ran.result.reason, "experiment timeout of 1s 500ms reached")
      assert.deepStrictEqual(statuses(ran), [
        ["runs past the deadline", "timeout"],
        ["never reached", "skipped"]
      ])
      const finished = ran.events.flatMap((e) =>
        e.type === "test.finished" && e.data.name === "runs past the deadline" ? [e.data] : []
      )
      assert.deepStrictEqual(
        finished.map((f) => f.status),
        ["timeout"]
      )
      assert.match(finished[0]?.errorMessage ?? "", /^(stopped by )?experiment timeout of 1s 500ms reached/)
      assert.strictEqual(ran.events.filter((e) => e.type === "service.exited").length, 1)
    })
  )

  it.effect("a test failing once passes on retry and is flaky; exit 127 is unsupported; --retries 0 turns it off", () =>
    Effect.gen(function* () {
      let attempts = 0
      const script: FakeEnvironment.Script = (launch) => {
        if (launch.id === "unsupported case/client") return { exitAfter: "10 millis", exitCode: 127 }
        attempts++
        return { exitAfter: "50 millis", exitCode: attempts === 1 ? 1 : 0 }
      }
      const ran = yield* runOnFake("cases/flaky.yaml", script)
      const flaky = ran.result.tests.find((test) => test.name === "flaky client")!
      assert.deepStrictEqual([flaky.status, flaky.attempts, flaky.flaky], ["passed", 2, true])
      const finished = ran.events.flatMap((e) =>
        e.type === "test.finished" && e.data.name === "flaky client" ? [[e.data.attempt, e.data.status]] : []
      )
      assert.deepStrictEqual(finished, [
        [1, "failed"],
        [2, "passed"]
      ])
      assert.strictEqual(ran.result.tests.find((t) => t.name === "unsupported case")?.status, "unsupported")
      assert.isTrue(ExperimentManager.succeeded(ran.result))
      attempts = 0
      const once = yield* runOnFake("cases/flaky.yaml", script, { overrides: { filter: "flaky", retries: 0 } })
      assert.deepStrictEqual(statuses(once), [["flaky client", "failed"]])
    })
  )

  it.effect("fast-fail stops the run at the first failure and says why", () =>
    Effect.gen(function* () {
      const ran = yield* runOnFake("cases/fast-fail.yaml", (launch) => ({
        exitAfter: "20 millis",
        exitCode: launch.id === "first fails/client" ? 1 : 0
      }))
      assert.strictEqual(ran.result.status, "finished_early")
      assert.strictEqual(ran.result.reason, "fast-fail: first fails failed: client (exec) ended with exit code 1")
      assert.deepStrictEqual(
        ran.result.tests.map((test) => test.status),
        ["failed", "skipped", "skipped"]
      )
      assert.isFalse(ran.events.some((e) => e.type === "test.started" && e.data.name !== "first fails"))
      const finished = ran.events.find((e) => e.type === "experiment.finished")
      assert.deepStrictEqual(finished?.data, {
        status: "finished_early",
        reason: ran.result.reason!,
        fastFailTriggered: true
      })
    })
  )

  it.effect("a readiness command is retried until it succeeds; assertions read the services' logs", () =>
    Effect.gen(function* () {
      let probes = 0
      const ran = yield* runOnFake("cases/readiness.yaml", (launch) => {
        if (launch.id === "ready by probe/server/readiness") {
          probes++
          return { exitAfter: "10 millis", exitCode: probes < 4 ? 1 : 0 }
        }
        return launch.id === "ready by probe/client" ? { exitAfter: "50 millis", stdout: "hi\n" } : {}
      })
      assert.deepStrictEqual(statuses(ran), [["ready by probe", "passed"]])
      assert.strictEqual(probes, 4)
      const ready = ran.events.flatMap((e) =>
        e.type === "service.state_changed" && e.entityId === "ready by probe/server" && e.data.to === "READY"
          ? [e.data.metadata]
          : []
      )
      assert.deepStrictEqual(ready, [{ readiness: "command" }])
    })
  )

  it.effect(
    "log readiness: a server is ready at its line, times out on the Clock without it, fails if it ends first",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-harness-" })
        const server = (name: string) => [
          `  - name: ${name}`,
          "    services:",
          "      server:",
          "        { implementation: exec, role: server, parameters: { program: srv },",
          '          readiness: { kind: log, pattern: "^listening$", timeout: 3 seconds } }',
          "      client: { implementation: exec, role: client, target: server, parameters: { program: cli } }"
        ]
        yield* fs.writeFileString(
          `${dir}/log-readiness.yaml`,
          [
            "name: log readiness",
            "concurrency: 3",
            "tests:",
            ...server("says it"),
            ...server("says nothing"),
            ...server("ends first"),
            ""
          ].join("\n")
        )
        const ran = yield* runOnFake(
          `${dir}/log-readiness.yaml`,
          byId({
            "says it/server": { stdout: "starting\nlistening\n" },
            "says it/client": { exitAfter: "10 millis" },
            "says nothing/server": { stdout: "starting\n" },
            "ends first/server": { exitAfter: "1 second", exitCode: 2, stderr: "bad config\n" }
          })
        )
        const byName = new Map(ran.result.tests.map((test) => [test.name, test]))
        assert.strictEqual(byName.get("says it")?.status, "passed", byName.get("says it")?.reason)
        assert.strictEqual(byName.get("says nothing")?.status, "timeout")
        assert.strictEqual(
          byName.get("says nothing")?.reason,
          "says nothing/server not ready after 3s: no output line matching /^listening$/ (probe: the service's stdout and stderr logs)"
        )
        assert.strictEqual(byName.get("ends first")?.status, "failed")
        // Failed at its exit, long before the readiness deadline, by the readiness check (the crash watcher leaves
        // an exit before readiness to it).
        assert.strictEqual(byName.get("ends first")?.reason, "ends first/server ended before it was ready: exit code 2")
        const ended = ran.events.find((e) => e.type === "test.finished" && e.data.name === "ends first")
        assert.isBelow(ended?.type === "test.finished" ? ended.data.durationMs : Infinity, 3000)
        const ready = ran.events.flatMap((e) =>
          e.type === "service.state_changed" && e.data.to === "READY" && e.entityId.endsWith("/server")
            ? [[e.entityId, e.data.metadata]]
            : []
        )
        assert.deepStrictEqual(ready, [["says it/server", { readiness: "log" }]])
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("steps run in order through the environment's runner; a wait is Clock time; a failed step says why", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-harness-" })
      yield* fs.writeFileString(
        `${dir}/steps.yaml`,
        [
          "name: steps",
          "concurrency: 1",
          "tests:",
          "  - name: steps in order",
          "    services:",
          "      server: { implementation: exec, role: server, parameters: { program: srv } }",
          "    steps:",
          "      - wait: 5 seconds",
          '      - run: { name: check, command: ["make", "check", "{{ server.port }}"] }',
          "    assertions:",
          "      - { type: output_matches, step: check, pattern: all good }",
          "  - name: a failing step",
          "    services:",
          "      server: { implementation: exec, role: server, parameters: { program: srv } }",
          "    steps:",
          '      - run: { name: broken, command: ["make", "broken"] }',
          ""
        ].join("\n")
      )
      const ran = yield* runOnFake(`${dir}/steps.yaml`, () => ({}), {
        steps: ScriptedRunner.rules([
          [/^make check \d+$/, { stdout: "all good\n", duration: "2 seconds" }],
          ["make broken", { exitCode: 2 }]
        ])
      })
      assert.deepStrictEqual(statuses(ran), [
        ["steps in order", "passed"],
        ["a failing step", "failed"]
      ])
      assert.strictEqual(ran.result.tests[1]?.reason, "step broken: exit code 2 (expected 0)")
      const check = ran.events.find(
        (e) => e.type === "step.finished" && e.data.test === "steps in order" && e.data.index === 1
      )
      // At least the scripted time on the Clock (the driver may move it on while a log file is written).
      assert.isAtLeast(check?.type === "step.finished" ? check.data.durationMs : 0, 2000)
      const wait = ran.events.find(
        (e) => e.type === "step.finished" && e.data.test === "steps in order" && e.data.index === 0
      )
      assert.isAtLeast(wait?.type === "step.finished" ? wait.data.durationMs : 0, 5000)
      // The server's port reached the step's command line; the commands were published as command.* events.
      assert.isTrue(ran.events.some((e) => e.type === "command.completed"))
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("a plan naming an environment its registry lacks fails the run with PluginNotFound, not a defect", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-harness-" })
      const prepared = yield* Experiment.prepare(`${fixtures}quickstart.yaml`)
      const plan = {
        ...prepared.plan,
        tests: prepared.plan.tests.map((test) => ({ ...test, environment: "elsewhere" }))
      }
      const error = yield* Effect.flip(ExperimentManager.run(plan, { runDir, registry: prepared.registry }))
      assert.strictEqual(error._tag, "PluginNotFound")
      assert.include(error.message, "elsewhere")
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(EventBus.EventBus.layer, NodeServices.layer)))
  )
})
