import { existsSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { Experiment } from "../src/index.ts"
import { finishedOf, fixtures, provide, readEvents, runFixture } from "./support.ts"

describe("replay in experiments", () => {
  it.live("plays the recorded greeter for its client test: as a service and as a step", () =>
    provide(
      Effect.gen(function* () {
        const outcome = yield* runFixture("replay.yaml")
        const tests = outcome.result!.tests
        assert.deepStrictEqual(
          tests.map((test) => [test.name, test.status, test.reason]),
          [
            ["client against the replay service", "passed", undefined],
            ["client against a replay step", "passed", undefined]
          ]
        )
        const events = readEvents(outcome.runDir)
        const replayChecks = events.flatMap((e) =>
          e.type === "assertion.checked" && e.data.kind === "replay_passed" ? [[e.data.passed, e.data.message]] : []
        )
        assert.deepStrictEqual(replayChecks, [
          [true, "service greeter: replay passed (1 connection(s), 6 step(s) matched)"],
          [true, "step greeting: replay passed (1 connection(s), 6 step(s) matched)"]
        ])
        const steps = events.flatMap((e) => (e.type === "step.finished" ? [[e.data.kind, e.data.status]] : []))
        assert.deepStrictEqual(steps, [["replay", "passed"]])
        assert.isTrue(
          existsSync(`${outcome.runDir}/tests/client-against-the-replay-service/attempt-1/greeter/replay-outcome.json`)
        )
      })
    )
  )

  it.live("a client that diverges fails its test with the offset of the first differing byte", () =>
    provide(
      Effect.gen(function* () {
        const outcome = yield* runFixture("cases/replay-diverge.yaml")
        const [service, step] = outcome.result!.tests
        assert.strictEqual(service?.status, "failed")
        assert.strictEqual(step?.status, "failed")
        for (const test of [service!, step!]) {
          assert.include(test.reason, "the client's bytes differ from the script at offset 5")
          assert.include(test.reason, `"NAME intruder⏎"`)
        }
        assert.match(
          service!.reason!,
          /^service greeter: replay failed: connection 0, step recorded_script\.scripts\[1\]/
        )
        assert.match(step!.reason!, /^step greeting: replay failed: /)
        // The client's own verdict (exit 3: the replay closed the connection) is asserted and passes.
        const exitCheck = readEvents(outcome.runDir).find(
          (e) => e.type === "assertion.checked" && e.data.kind === "exit_code"
        )
        assert.isTrue(exitCheck?.type === "assertion.checked" && exitCheck.data.passed)
        assert.strictEqual(finishedOf(readEvents(outcome.runDir), step!.name)[0]?.status, "failed")
      })
    )
  )

  it.live("--dry-run checks replay steps and assertions against the test", () =>
    provide(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-replay-plan-" })
        const file = `${dir}/bad.yaml`
        yield* fs.writeFileString(
          file,
          [
            "tests:",
            "  - name: t",
            "    services:",
            "      web: { implementation: node-echo, role: server }",
            "      player: { implementation: replay, role: server }",
            "    steps:",
            "      - replay: { name: r, service: web }",
            "      - replay: { name: s, script: x.json }",
            "      - run: { name: plain, command: [ls] }",
            "    assertions:",
            "      - { type: replay_passed, service: web }",
            "      - { type: replay_passed, step: plain }"
          ].join("\n")
        )
        const error = yield* Effect.flip(Experiment.prepare(file))
        assert.deepStrictEqual(
          error.problems.map((problem) => [problem.path, problem.message]),
          [
            ["tests[0].services.player.parameters.script", "required parameter missing"],
            ["tests[0].steps[0].replay.service", `"web" is not a replay service`],
            ["tests[0].steps[1].replay.command", "give the client command run against the replay"],
            ["tests[0].assertions[0].service", `"web" is not a replay service`],
            ["tests[0].assertions[1].step", `"plain" is not a replay step`]
          ]
        )
        assert.include(fixtures, "fixtures/experiments")
      })
    )
  )
})
