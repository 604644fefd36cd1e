import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Duration, Effect, Exit, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Command, CommandRunner, ScriptedRunner } from "../src/index.ts"

const script = ScriptedRunner.rules(
  [
    ["make build", { stdout: "built\n", duration: "3 seconds" }],
    [/^sh -c exit 3$/, { exitCode: 3, stderr: "boom\n" }],
    ["missing", { cannotStart: "not-found" }]
  ],
  { duration: "1 minute" }
)

const layer = CommandRunner.CommandRunner.layerTest(script).pipe(Layer.provideMerge(EventBus.EventBus.layer))

describe("ScriptedRunner (CommandRunner.layerTest)", () => {
  it.effect("a command ends when the Clock says, with its scripted output; what ran is recorded", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const fiber = yield* Effect.forkChild(runner.run(Command.make("make", ["build"], { id: "b" })))
      yield* TestClock.adjust("2999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual([result.exitCode, result.stdout, result.durationMs], [0, "built\n", 3000])
      const failed = yield* Effect.flip(runner.run(Command.shell("exit 3")))
      assert.strictEqual(failed._tag, "CommandFailed")
      assert.strictEqual(failed._tag === "CommandFailed" ? failed.result.stderr : "", "boom\n")
      const missing = yield* Effect.flip(runner.run(Command.make("missing")))
      assert.strictEqual(missing._tag, "CommandNotFound")
      const ran = yield* ScriptedRunner.ScriptedRunner.use((scripted) => scripted.ran)
      assert.deepStrictEqual(ran.map(ScriptedRunner.commandLine), ["make build", "sh -c exit 3", "missing"])
    }).pipe(Effect.provide(layer))
  )

  it.effect("a command's timeout ends it first, as timed out; its events are published as a real runner's", () =>
    Effect.gen(function* () {
      const bus = yield* EventBus.EventBus
      const events = yield* bus.subscribe
      const runner = yield* CommandRunner.CommandRunner
      const fiber = yield* Effect.forkChild(
        Effect.exit(runner.run(Command.make("sleep", ["60"], { id: "s", timeout: Duration.seconds(5) })))
      )
      yield* TestClock.adjust("5 seconds")
      const exit = yield* Fiber.join(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      assert.strictEqual(error?._tag === "Fail" ? error.error._tag : undefined, "CommandTimedOut")
      const types = yield* events.pipe(
        Stream.take(2),
        Stream.map((e) => e.type),
        Stream.runCollect
      )
      assert.deepStrictEqual(types, ["command.started", "command.timed_out"])
    }).pipe(Effect.scoped, Effect.provide(layer))
  )

  it.effect("streams the scripted output, then the exit", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const fiber = yield* Effect.forkChild(Stream.runCollect(runner.stream(Command.make("make", ["build"]))))
      yield* TestClock.adjust("3 seconds")
      const chunks = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        chunks.map((chunk) => chunk._tag),
        ["Stdout", "Exit"]
      )
    }).pipe(Effect.provide(layer))
  )
})
