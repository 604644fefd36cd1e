import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Result, Schema } from "effect"
import * as TimeSpan from "../src/TimeSpan.ts"

const decode = Schema.decodeUnknownResult(TimeSpan.TimeSpan)
const nanosOf = (input: number | string): bigint | string =>
  Result.match(TimeSpan.parse(input), { onFailure: (message) => message, onSuccess: Duration.toNanosUnsafe })

/** Any length of time down to the nanosecond, up to a few weeks, as its parts. */
const Parts = Schema.Struct({
  hours: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 })),
  minutes: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 59 })),
  seconds: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 59 })),
  nanos: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 999_999_999 }))
})
const durationOf = (parts: typeof Parts.Type) =>
  Duration.nanos(
    ((BigInt(parts.hours) * 60n + BigInt(parts.minutes)) * 60n + BigInt(parts.seconds)) * 1_000_000_000n +
      BigInt(parts.nanos)
  )

describe("TimeSpan", () => {
  it("reads seconds, the short forms and Effect's forms", () => {
    const s = 1_000_000_000n
    const cases: ReadonlyArray<readonly [number | string, bigint]> = [
      [2, 2n * s],
      [0.5, s / 2n],
      [0, 0n],
      ["2", 2n * s],
      ["1.5", (3n * s) / 2n],
      ["2s", 2n * s],
      ["500ms", 500_000_000n],
      ["1m30s", 90n * s],
      ["1h", 3600n * s],
      ["1.5h", 5400n * s],
      ["250us", 250_000n],
      ["250µs", 250_000n],
      ["7ns", 7n],
      ["1d 2h", 26n * 3600n * s],
      ["1m 30s", 90n * s],
      ["2 seconds", 2n * s],
      ["500 millis", 500_000_000n],
      ["1 minute", 60n * s],
      ["3 micros", 3000n],
      ["1 week", 7n * 86400n * s],
      ["1 minute 30 seconds", 90n * s],
      ["  10s  ", 10n * s]
    ]
    for (const [input, nanos] of cases) assert.strictEqual(nanosOf(input), nanos, JSON.stringify(input))
  })

  it("refuses anything else with a sentence naming the value and what is accepted", () => {
    assert.strictEqual(nanosOf("soon"), `not a duration: "soon" (${TimeSpan.accepted})`)
    for (const input of ["", "2 parsecs", "5 mins", "1m30", "s", "2S", "1e3", "Infinity", "2 seconds later", "ms5"]) {
      assert.match(String(nanosOf(input)), /^not a duration: /, JSON.stringify(input))
    }
    assert.strictEqual(nanosOf(-1), "not a duration: -1 (a length of time is never negative)")
    assert.strictEqual(nanosOf("-2 seconds"), `not a duration: "-2 seconds" (a length of time is never negative)`)
    assert.strictEqual(
      nanosOf("30s1m"),
      `not a duration: "30s1m" (give each unit once, from the largest to the smallest)`
    )
    assert.match(String(nanosOf("1s1s")), /each unit once/)
    // A pasted novel is refused before any pattern runs on it.
    assert.match(String(nanosOf("1s".repeat(1000))), /^not a duration: /)
  })

  it("as a Schema: decodes numbers and text to a Duration, and a bad value is an issue naming it", () => {
    const ok = decode("1m30s")
    assert.isTrue(Result.isSuccess(ok) && Duration.equals(ok.success, Duration.seconds(90)))
    // Whole milliseconds are built as Duration.seconds builds them, so structural comparisons still hold.
    assert.deepStrictEqual(decode(30), Result.succeed(Duration.seconds(30)))
    assert.deepStrictEqual(decode("30s"), Result.succeed(Duration.seconds(30)))
    const bad = decode("soon")
    assert.isTrue(Result.isFailure(bad))
    if (Result.isFailure(bad)) assert.include(bad.failure.message, `not a duration: "soon"`)
    assert.isTrue(Result.isFailure(decode(true)))
    assert.strictEqual(Schema.encodeSync(TimeSpan.TimeSpan)(Duration.millis(1500)), "1s500ms")
  })

  it.effect.prop("format and parse round-trip every duration down to the nanosecond", [Parts], ([parts]) =>
    Effect.sync(() => {
      const duration = durationOf(parts)
      const text = TimeSpan.format(duration)
      const back = TimeSpan.parse(text)
      assert.isTrue(Result.isSuccess(back), text)
      if (Result.isSuccess(back))
        assert.strictEqual(Duration.toNanosUnsafe(back.success), Duration.toNanosUnsafe(duration), text)
      // Effect's own rendering (what the logs show) reads back too.
      const logged = TimeSpan.parse(Duration.format(duration))
      assert.isTrue(Result.isSuccess(logged) && Duration.equals(logged.success, duration), Duration.format(duration))
    })
  )

  it.effect.prop(
    "a number of seconds and its formatted text are the same length of time",
    [Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1e9 }))],
    ([seconds]) =>
      Effect.sync(() => {
        const first = Result.getOrThrow(TimeSpan.parse(seconds))
        const again = Result.getOrThrow(TimeSpan.parse(TimeSpan.format(first)))
        assert.strictEqual(Duration.toNanosUnsafe(again), Duration.toNanosUnsafe(first), String(seconds))
      })
  )
})
