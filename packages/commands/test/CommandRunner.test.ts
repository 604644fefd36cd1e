import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Duration, Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Command, CommandError, CommandRunner } from "../src/index.ts"
import { collectEvents, dataOf, LocalLayer } from "./fixtures/processes.ts"

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

  it.effect("a real failing command is retried on the test clock: one start per attempt, spaced by the backoff", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const events = yield* Effect.forkChild(yield* collectEvents(5, ["command.started", "command.failed"]))
      const fiber = yield* runner
        .run(Command.make("false", [], { id: "flaky", retries: { times: 3, backoff: Duration.seconds(1), factor: 2 } }))
        .pipe(Effect.flip, Effect.forkChild)
      // The process runs in real time; the backoff sleeps only pass when the test clock is moved.
      const stepper = yield* Effect.forkChild(
        Effect.forever(Effect.andThen(TestClock.adjust("50 millis"), TestClock.withLive(Effect.sleep("2 millis"))))
      )
      const error = yield* Fiber.join(fiber)
      yield* Fiber.interrupt(stepper)
      assert.strictEqual(error._tag, "CommandFailed")
      const seen = yield* Fiber.join(events)
      const starts = seen.filter((event) => event.type === "command.started")
      assert.deepStrictEqual(
        starts.map((event) => dataOf(event).attempt),
        [1, 2, 3, 4]
      )
      const times = starts.map((event) => Date.parse(event.timestamp))
      const gaps = times.slice(1).map((time, index) => time - (times[index] as number))
      for (const [index, gap] of gaps.entries()) {
        assert.isAtLeast(gap, 1000 * 2 ** index, `gap before attempt ${index + 2}`)
      }
      const failed = seen.find((event) => event.type === "command.failed")
      assert.deepStrictEqual([failed?.entityId, dataOf(failed).attempts, dataOf(failed).exitCode], ["flaky", 4, 1])
    }).pipe(Effect.provide(LocalLayer))
  )

  it.live("events follow a run by the command's id and never contain env values", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const events = yield* Effect.forkChild(yield* collectEvents(6))
      yield* runner.run(
        Command.make("true", [], { id: "ok", description: "succeeds", env: { API_TOKEN: "s3cr3t-value" } })
      )
      yield* Effect.flip(runner.run(Command.shell("exit 2", { id: "bad", env: { API_TOKEN: "s3cr3t-value" } })))
      yield* Effect.flip(runner.run(Command.make("sleep", ["30"], { id: "slow", timeout: Duration.millis(200) })))
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
        runner: "local",
        attempt: 1
      })
      assert.strictEqual(dataOf(seen[3]).reason, "exit code 2")
      assert.strictEqual(dataOf(seen[5]).timeoutMs, 200)
      assert.notInclude(JSON.stringify(seen), "s3cr3t-value")
    }).pipe(Effect.provide(LocalLayer))
  )
})
