import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { Command } from "effect/cli"
import * as TimeSpanFlag from "../src/TimeSpanFlag.ts"

/** Runs a one-flag command in process and returns what the handler got for `--timeout`. */
const parse = (...argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    let seen: Option.Option<Duration.Duration> | undefined
    const command = Command.make("t", { timeout: TimeSpanFlag.optional("timeout", "How long") }, ({ timeout }) =>
      Effect.sync(() => {
        seen = timeout
      })
    )
    yield* Command.runWith(command, { version: "0", renderErrors: false })(argv)
    return seen
  }).pipe(Effect.provide(NodeServices.layer))

describe("TimeSpanFlag", () => {
  it.effect("reads seconds, short forms and Effect's forms into a Duration", () =>
    Effect.gen(function* () {
      for (const [text, seconds] of [
        ["90", 90],
        ["1m30s", 90],
        ["2 minutes", 120],
        ["500ms", 0.5]
      ] as const) {
        const seen = yield* parse("--timeout", text)
        assert.isTrue(seen !== undefined && Option.isSome(seen), text)
        if (seen !== undefined && Option.isSome(seen)) {
          assert.strictEqual(Duration.toMillis(seen.value), seconds * 1000, text)
        }
      }
      assert.deepStrictEqual(yield* parse(), Option.none())
    })
  )

  it.effect("a bad value is a usage error naming the flag and the value", () =>
    Effect.gen(function* () {
      // The CLI shows the command's help with the errors below it, and exits 1.
      const error = yield* Effect.flip(parse("--timeout", "soon"))
      assert.strictEqual(error._tag, "ShowHelp")
      const [invalid] = error._tag === "ShowHelp" ? error.errors : []
      assert.strictEqual(invalid?._tag, "InvalidValue")
      assert.include(invalid?.message, "--timeout")
      assert.include(invalid?.message, `not a duration: "soon"`)
    })
  )
})
