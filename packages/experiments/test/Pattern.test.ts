// Regexes from experiment files run in linear time: a catastrophic pattern against hostile output finishes, can
// be interrupted, and syntax RE2 cannot match in linear time is refused when the file is planned.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Result } from "effect"
import { Pattern } from "../src/index.ts"
import { provide, runFixture } from "./support.ts"

const compiled = (source: string) => {
  const result = Pattern.compile(source)
  if (Result.isFailure(result)) throw new Error(result.failure)
  return result.success
}

describe("Pattern", () => {
  it.effect("^(a+)+$ against 50,000 a's and a ! finishes, and does not match", () =>
    Effect.gen(function* () {
      const matched = yield* Pattern.test(compiled("^(a+)+$"), `${"a".repeat(50_000)}!\n`)
      assert.isFalse(matched)
      assert.isTrue(yield* Pattern.test(compiled("^(a+)+$"), `x\n${"a".repeat(50_000)}\ny`))
    })
  )

  it.live("a long match is done in slices and can be interrupted between them", () =>
    Effect.gen(function* () {
      // 8 slices of hostile text: interrupting after the first yield must not wait for the rest.
      const text = `${"a".repeat(Pattern.sliceChars - 1)}!\n`.repeat(8)
      const fiber = yield* Effect.forkChild(Pattern.test(compiled("^(a+)+$"), text))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      assert.strictEqual(exit._tag, "Failure")
      // Run to the end, the same text is not a match, and a match across a slice boundary is found.
      assert.isFalse(yield* Pattern.test(compiled("^(a+)+$"), text))
      // Lines up to just before the first cut, then a three-line match across it.
      const lines = `${"b".repeat(99)}\n`.repeat(Math.floor(Pattern.sliceChars / 100) - 1)
      const across = `${lines}START\n${"c\n".repeat(20)}END\n${lines}`
      assert.isTrue(yield* Pattern.test(compiled("^START\n(c\n)+END$"), across))
      assert.isFalse(yield* Pattern.test(compiled("^START\n(c\n)+END$"), across.replace("END", "EMD")))
    })
  )

  it("refuses backreferences and lookaround, saying why; other errors say where", () => {
    const failure = (source: string) => {
      const result = Pattern.compile(source)
      return Result.isFailure(result) ? result.failure : "compiled"
    }
    assert.include(failure("(a)\\1"), "backreferences")
    assert.include(failure("(?=x)"), "lookahead and lookbehind")
    assert.include(failure("(?<!x)y"), "lookahead and lookbehind")
    assert.include(failure("("), "not a regular expression (RE2 syntax): missing closing )")
    assert.strictEqual(failure("echo ok: \\d+ messages"), "compiled")
  })

  it.live(
    "an experiment whose program under test prints the hostile text finishes, the assertions failing",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("cases/catastrophic-regex.yaml")
          const [test] = outcome.result!.tests
          assert.strictEqual(test?.status, "failed")
          assert.include(test?.reason ?? "", "service client output does not match /^(a+)+$/")
        })
      ),
    120_000
  )
})
