import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { Command, CommandRunner } from "../src/index.ts"
import { LocalLayer } from "./fixtures/processes.ts"

const invalidField = (input: unknown) =>
  Effect.map(Effect.flip(Command.decode(input)), (error) => [error._tag, error.field] as const)

describe("Command", () => {
  it.effect("decodes a command from outside input: durations from strings, retries, env", () =>
    Effect.gen(function* () {
      const command = yield* Command.decode({
        id: "build",
        program: "make",
        args: ["-j", "4"],
        env: { CC: "clang" },
        timeout: "5 seconds",
        retries: { times: 2, backoff: "250 millis" }
      })
      assert.strictEqual(command.id, "build")
      assert.deepStrictEqual(command.args, ["-j", "4"])
      assert.isTrue(Duration.equals(command.timeout ?? Duration.zero, Duration.seconds(5)))
      assert.isTrue(Duration.equals(command.retries?.backoff ?? Duration.zero, Duration.millis(250)))
    })
  )

  it.effect("bad input is CommandInvalid naming the field", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* invalidField({ args: ["x"] }), ["CommandInvalid", "program"])
      assert.deepStrictEqual(yield* invalidField({ program: "" }), ["CommandInvalid", "program"])
      assert.deepStrictEqual(yield* invalidField({ program: "ls", args: ["ok", "a\0b"] }), [
        "CommandInvalid",
        "args[1]"
      ])
      assert.deepStrictEqual(yield* invalidField({ program: "ls", args: ["ok", 3] }), ["CommandInvalid", "args[1]"])
      assert.deepStrictEqual(yield* invalidField({ program: "env", env: { PORT: 8080 } }), [
        "CommandInvalid",
        "env.PORT"
      ])
      assert.deepStrictEqual(yield* invalidField({ program: "sleep", timeout: "-5 seconds" }), [
        "CommandInvalid",
        "timeout"
      ])
      assert.deepStrictEqual(yield* invalidField({ program: "ls", shell: "ls" }), ["CommandInvalid", "program"])
      assert.deepStrictEqual(yield* invalidField({ program: "ls", retries: { times: -1 } }), [
        "CommandInvalid",
        "retries.times"
      ])
    })
  )

  it.effect("validate catches what the types let through, and never echoes an env value", () =>
    Effect.gen(function* () {
      const secretish = yield* Effect.flip(
        Command.validate(Command.make("env", [], { env: { TOKEN: 42 as unknown as string } }))
      )
      assert.strictEqual(secretish.field, "env.TOKEN")
      assert.notInclude(secretish.reason, "42")
      const negative = yield* Effect.flip(
        Command.validate(Command.make("sleep", ["1"], { timeout: Duration.millis(-1) }))
      )
      assert.strictEqual(negative.field, "timeout")
      const nul = yield* Effect.flip(Command.validate(Command.shell("echo \0")))
      assert.strictEqual(nul.field, "shell")
      const valid = yield* Command.validate(Command.make("ls"))
      assert.isString(valid.id)
    })
  )

  it.live("an invalid command is refused before anything is spawned", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const error = yield* Effect.flip(runner.run(Command.make("echo", ["a\0b"], { id: "nul" })))
      assert.strictEqual(error._tag, "CommandInvalid")
      assert.strictEqual(error._tag === "CommandInvalid" ? error.field : "", "args[0]")
    }).pipe(Effect.provide(LocalLayer))
  )
})
