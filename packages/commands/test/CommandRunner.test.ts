import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Duration, Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Command, CommandError, CommandRunner, ScriptedRunner } from "../src/index.ts"
import { collectEvents, dataOf } from "./fixtures/processes.ts"

const resultAt = (commandId: string, exitCode: number) => ({
  commandId,
  exitCode,
  signal: null,
  stdout: "",
  stderr: "",
  startedAt: new Date(0).toISOString(),
  endedAt: new Date(0).toISOString(),
  durationMs: 0,
  attempts: 1,
  timedOut: false,
  truncated: false
})

/** A runner whose attempts fail until `succeedOn`, counting them: the retry logic without processes. */
const countingRunner = (succeedOn: number) => {
  let attempts = 0
  const layer = Layer.effect(
    CommandRunner.CommandRunner,
    CommandRunner.make({
      name: "counting",
      run: (command) =>
        Effect.suspend(() => {
          attempts++
          return attempts >= succeedOn
            ? Effect.succeed(resultAt(command.id, 0))
            : Effect.fail(new CommandError.CommandFailed({ commandId: command.id, result: resultAt(command.id, 1) }))
        }),
      stream: () => Stream.empty
    })
  ).pipe(Layer.provideMerge(EventBus.EventBus.layer))
  return { layer, attempts: () => attempts }
}

describe("CommandRunner", () => {
  it.effect("retries follow the backoff schedule on Effect's clock (TestClock drives it)", () => {
    const counting = countingRunner(4)
    return Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const fiber = yield* runner
        .run(Command.make("flaky", [], { retries: { times: 5, backoff: Duration.seconds(1), factor: 2 } }))
        .pipe(Effect.forkChild)
      yield* Effect.yieldNow
      assert.strictEqual(counting.attempts(), 1)
      yield* TestClock.adjust("999 millis")
      assert.strictEqual(counting.attempts(), 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(counting.attempts(), 2)
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual(counting.attempts(), 2)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(counting.attempts(), 3)
      yield* TestClock.adjust("4 seconds")
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(counting.attempts(), 4)
      assert.strictEqual(result.attempts, 4)
      assert.strictEqual(result.durationMs, 7000)
    }).pipe(Effect.provide(counting.layer))
  })

  it.effect("retries stop after `times`; the error carries the attempt count", () => {
    const counting = countingRunner(100)
    return Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const fiber = yield* runner
        .run(Command.make("broken", [], { retries: { times: 2, backoff: Duration.millis(10) } }))
        .pipe(Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(counting.attempts(), 3)
      assert.strictEqual(error._tag, "CommandFailed")
      assert.strictEqual(error._tag === "CommandFailed" ? error.result.attempts : 0, 3)
    }).pipe(Effect.provide(counting.layer))
  })

  it.effect("events follow a run by the command's id and never contain env values (scripted runner, TestClock)", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const events = yield* Effect.forkChild(yield* collectEvents(6))
      yield* runner.run(
        Command.make("true", [], { id: "ok", description: "succeeds", env: { API_TOKEN: "s3cr3t-value" } })
      )
      yield* Effect.flip(runner.run(Command.shell("exit 2", { id: "bad", env: { API_TOKEN: "s3cr3t-value" } })))
      const slow = yield* Effect.forkChild(
        Effect.flip(runner.run(Command.make("sleep", ["30"], { id: "slow", timeout: Duration.millis(200) })))
      )
      yield* TestClock.adjust("200 millis")
      assert.strictEqual((yield* Fiber.join(slow))._tag, "CommandTimedOut")
      const seen = yield* Fiber.join(events)
      assert.deepStrictEqual(
        seen.map((event) => [event.type, event.entityId]),
        [
          ["command.started", "ok"],
          ["command.completed", "ok"],
          ["command.started", "bad"],
          ["command.failed", "bad"],
          ["command.started", "slow"],
          ["command.timed_out", "slow"]
        ]
      )
      assert.deepStrictEqual(seen[0]?.data, {
        program: "true",
        args: [],
        description: "succeeds",
        runner: "scripted",
        attempt: 1
      })
      assert.strictEqual(dataOf(seen[3]).reason, "exit code 2")
      assert.strictEqual(dataOf(seen[5]).timeoutMs, 200)
      assert.notInclude(JSON.stringify(seen), "s3cr3t-value")
    }).pipe(
      Effect.provide(
        CommandRunner.CommandRunner.layerTest(
          ScriptedRunner.rules([
            ["sh -c exit 2", { exitCode: 2 }],
            ["sleep 30", { duration: "30 seconds" }]
          ])
        ).pipe(Layer.provideMerge(EventBus.EventBus.layer))
      )
    )
  )
})
