import { assert, describe, it } from "@effect/vitest"
import { LocalRunner, ScriptedRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Agent, Broker, MqttConnection, Security } from "@testbed/fleet"
import { Effect, FileSystem, Layer, Redacted } from "effect"
import { Experiment } from "../src/index.ts"
import { provide, readEvents, runFixture } from "./support.ts"

/** The `step.finished` payloads of a run, read from its log (every line decoded as a `TestbedEvent`). */
const stepsFinished = (runDir: string) =>
  readEvents(runDir).flatMap((e) => (e.type === "step.finished" ? [e.data] : []))

const writeExperiment = (lines: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-fleet-step-" })
    const file = `${dir}/fleet.yaml`
    yield* fs.writeFileString(file, lines.join("\n"))
    return { dir, file }
  })

describe("fleet step", () => {
  it.live(
    "runs a pipeline on agents it starts, over its own embedded broker",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("fleet.yaml")
          const [test] = outcome.result!.tests
          assert.deepStrictEqual(
            [test?.name, test?.status, test?.reason],
            ["fleet pipeline on three agents", "passed", undefined]
          )
          const finished = stepsFinished(outcome.runDir)
          const fleet = finished.filter((step) => step.test.startsWith("fleet:"))
          assert.strictEqual(fleet.length, 6)
          for (const step of fleet) {
            assert.strictEqual(step.status, "passed")
            assert.match(step.test, /^fleet:fleet pipeline on three agents\/smoke:agent-[123]$/)
          }
          // The test's own step, under the test's own name.
          assert.deepStrictEqual(
            finished
              .filter((step) => step.test === "fleet pipeline on three agents")
              .map((step) => [step.kind, step.status]),
            [["fleet", "passed"]]
          )
        })
      ),
    30_000
  )

  it.live(
    "a failing command fails the test naming the agent and the step",
    () =>
      provide(
        Effect.gen(function* () {
          const { dir, file } = yield* writeExperiment([
            "tests:",
            "  - name: fails",
            "    steps:",
            '      - fleet: { name: push, agents: 2, pipeline: ["true", "false", "true"], step_timeout: 20 }',
            '      - run: { name: after, command: ["true"] }'
          ])
          const outcome = yield* Experiment.run(file, { outputDir: `${dir}/out`, progress: "none" })
          const [test] = outcome.result!.tests
          assert.strictEqual(test?.status, "failed")
          assert.match(test!.reason!, /^step push: /)
          assert.include(test!.reason, "agent agent-1 step 1 (false): exit code 1")
          assert.include(test!.reason, "agent agent-2 step 1 (false): exit code 1")
          const fleet = stepsFinished(outcome.runDir).filter((step) => step.test.startsWith("fleet:fails/push:"))
          // `true` passed on both, `false` failed on both, and the last step was skipped (never sent).
          assert.deepStrictEqual(fleet.map((step) => `${step.index}:${step.status}`).sort(), [
            "0:passed",
            "0:passed",
            "1:failed",
            "1:failed"
          ])
          // The step after the failed one did not run.
          assert.isFalse(readEvents(outcome.runDir).some((e) => e.type === "step.started" && e.data.kind === "run"))
        })
      ),
    30_000
  )

  // Unit test of the step on fleet's seams: agents from `Agent.Agents` (scripted: no process), connections from
  // `MqttConnection`'s connector (in memory: no broker), on TestClock. Exit code 3 is the script's own: real agents
  // would run `check v2` in a shell (127, no such program), and a real connection to mqtt://in-memory fails.
  it.effect("runs its pipeline on scripted agents over the in-memory broker (fleet's test layers)", () =>
    provide(
      Effect.gen(function* () {
        const { dir, file } = yield* writeExperiment([
          "tests:",
          "  - name: scripted",
          "    steps:",
          '      - fleet: { name: rollout, broker: "mqtt://in-memory", agents: 2, pipeline: ["deploy v2", "check v2", "never"] }'
        ])
        const outcome = yield* Experiment.run(file, { outputDir: `${dir}/out`, progress: "none" })
        const [test] = outcome.result!.tests
        assert.strictEqual(test?.status, "failed")
        const failures = test!
          .reason!.replace(/^step rollout: /, "")
          .split("; ")
          .sort()
        assert.strictEqual(failures.length, 2)
        for (const failure of failures)
          assert.match(failure, /^agent [0-9a-f]{6}-agent-[12] step 1 \(check v2\): exit code 3$/)
        const ran = yield* ScriptedRunner.ScriptedRunner.use((runner) => runner.ran)
        // Both agents ran the first two steps through the script; the failure skipped the third.
        assert.deepStrictEqual(ran.map((command) => command.shell).sort(), [
          "check v2",
          "check v2",
          "deploy v2",
          "deploy v2"
        ])
      }).pipe(
        Effect.provide(
          Layer.mergeAll(
            Agent.layerTest(ScriptedRunner.rules([[/check/, { exitCode: 3 }]])).pipe(
              Layer.provide(EventBus.EventBus.layer)
            ),
            MqttConnection.layerMemory
          )
        )
      )
    )
  )

  it.live(
    "waits for external agents on a given broker, signed with the secret file",
    () =>
      provide(
        Effect.gen(function* () {
          const broker = yield* Broker.embedded({ port: 0 })
          const signing = Security.signed(Redacted.make("a shared secret for the test"))
          // Agents of their own (own bus, own runner), as `testbed fleet agent` would be.
          yield* Agent.start({
            ids: ["outside-1", "outside-2"],
            connection: { url: broker.url },
            signing,
            // They register before the step's operator listens: resend soon rather than after 5 s.
            registrationInterval: "200 millis"
          }).pipe(Effect.provide(LocalRunner.layer.pipe(Layer.provideMerge(EventBus.EventBus.layer))))
          const { dir, file } = yield* writeExperiment([
            "tests:",
            "  - name: external",
            "    steps:",
            `      - fleet: { broker: "${broker.url}", expect: 2, secret_file: secret, pipeline: ["true"] }`
          ])
          const fs = yield* FileSystem.FileSystem
          yield* fs.writeFileString(`${dir}/secret`, "a shared secret for the test\n")
          const outcome = yield* Experiment.run(file, { outputDir: `${dir}/out`, progress: "none" })
          assert.strictEqual(outcome.result!.tests[0]?.status, "passed")
          const agents = stepsFinished(outcome.runDir)
            .filter((step) => step.test.startsWith("fleet:external/step0:"))
            .map((step) => step.test.split(":")[2])
            .sort()
          assert.deepStrictEqual(agents, ["outside-1", "outside-2"])
        })
      ),
    30_000
  )

  it.live("--dry-run checks fleet steps with their YAML paths", () =>
    provide(
      Effect.gen(function* () {
        const { file } = yield* writeExperiment([
          "tests:",
          "  - name: t",
          "    steps:",
          "      - fleet: { agents: 2, expect: 2, pipeline: [] }",
          "      - fleet: { expect: 1, pipeline: [uptime, ' '], broker: localhost, step_timeout: soon }",
          "  - name: fine",
          "    steps:",
          "      - fleet: { agents: 1, pipeline: [uptime], registration_timeout: 5 }"
        ])
        const error = yield* Effect.flip(Experiment.prepare(file))
        assert.deepStrictEqual(
          error.problems.map((problem) => [problem.path, problem.message]),
          [
            ["tests[0].steps[0].fleet", "give exactly one of agents (started by the step) or expect (external agents)"],
            ["tests[0].steps[0].fleet.secret_file", "external agents (expect) need the shared secret file"],
            ["tests[0].steps[0].fleet.pipeline", "empty pipeline"],
            ["tests[0].steps[1].fleet.secret_file", "external agents (expect) need the shared secret file"],
            ["tests[0].steps[1].fleet.pipeline[1]", "empty command"],
            ["tests[0].steps[1].fleet.broker", "not an MQTT URL: localhost"],
            [
              "tests[0].steps[1].fleet.step_timeout",
              `not a duration: "soon" (use seconds, or e.g. "2s", "500ms", "1m30s", "2 minutes")`
            ]
          ]
        )
      })
    )
  )
})
