/**
 * How a length of time is written in every file and flag testbed reads: a number is seconds (`2`, `0.5`); a string is
 * seconds too (`"2"`), a short form (`2s`, `500ms`, `1m30s`, `1h`, `250us`, and `1d 2h` as `Duration.format` writes
 * it), or Effect's own (`"2 seconds"`, `"500 millis"`). Decoded once, at the edge, to a `Duration`; anything else is
 * an error that names the value and says what is accepted.
 */
import { Duration, Effect, Result, Schema, SchemaIssue, SchemaTransformation } from "effect"

/** Nanoseconds per unit, by every name a unit may be written with. */
const unitNanos: Readonly<Record<string, bigint>> = {
  ns: 1n,
  nano: 1n,
  nanos: 1n,
  us: 1_000n,
  µs: 1_000n,
  micro: 1_000n,
  micros: 1_000n,
  ms: 1_000_000n,
  milli: 1_000_000n,
  millis: 1_000_000n,
  s: 1_000_000_000n,
  second: 1_000_000_000n,
  seconds: 1_000_000_000n,
  m: 60_000_000_000n,
  minute: 60_000_000_000n,
  minutes: 60_000_000_000n,
  h: 3_600_000_000_000n,
  hour: 3_600_000_000_000n,
  hours: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
  day: 86_400_000_000_000n,
  days: 86_400_000_000_000n,
  week: 604_800_000_000_000n,
  weeks: 604_800_000_000_000n
}

/** What the error says is accepted. */
export const accepted = 'use seconds, or e.g. "2s", "500ms", "1m30s", "2 minutes"'

/** Longer text is no duration anyone wrote by hand: refused before any pattern runs on it. */
const maxLength = 100

const seconds = /^\d+(?:\.\d+)?$/
// One `<number><unit>` part; the longer unit names come first, so `ms` is not read as `m` and a stray `s`. Sticky, so
// the parts must follow each other with nothing but spaces between; linear: no part can match in two ways.
const part =
  /\s*(\d+(?:\.\d+)?)\s*(nanos?|micros?|millis?|seconds?|minutes?|hours?|days?|weeks?|ns|us|µs|ms|s|m|h|d)(?![a-zµ])/y

/** `digits[.fraction]` times `per` nanoseconds, exactly (a fraction of a nanosecond is dropped). */
const nanosOf = (value: string, per: bigint): bigint => {
  const [whole = "0", fraction = ""] = value.split(".")
  return BigInt(whole) * per + (BigInt(fraction === "" ? "0" : fraction) * per) / 10n ** BigInt(fraction.length)
}

/** A whole number of milliseconds stays in milliseconds, as `Duration.seconds(n)` would build it. */
const fromNanos = (nanos: bigint): Duration.Duration =>
  nanos % 1_000_000n === 0n && nanos / 1_000_000n <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Duration.millis(Number(nanos / 1_000_000n))
    : Duration.nanos(nanos)

const invalid = (input: number | string, why: string = accepted): Result.Result<Duration.Duration, string> =>
  Result.fail(`not a duration: ${JSON.stringify(input)} (${why})`)

/** Parts such as `1m30s` or `1 minute 30 seconds`: each unit once, from the largest to the smallest. */
const parseParts = (input: string, text: string): Result.Result<Duration.Duration, string> => {
  let total = 0n
  let previous: bigint | undefined
  part.lastIndex = 0
  while (part.lastIndex < text.length) {
    const match = part.exec(text)
    if (match === null) return invalid(input)
    const per = unitNanos[match[2]!]!
    if (previous !== undefined && per >= previous) {
      return invalid(input, "give each unit once, from the largest to the smallest")
    }
    previous = per
    total += nanosOf(match[1]!, per)
  }
  return Result.succeed(fromNanos(total))
}

/** Reads a length of time; the failure is a sentence naming the value. */
export const parse = (input: number | string): Result.Result<Duration.Duration, string> => {
  if (typeof input === "number") {
    if (!Number.isFinite(input)) return invalid(input, "a length of time is finite")
    return input < 0 ? invalid(input, "a length of time is never negative") : Result.succeed(Duration.seconds(input))
  }
  const text = input.trim()
  if (text === "" || text.length > maxLength) return invalid(input)
  if (text.startsWith("-")) return invalid(input, "a length of time is never negative")
  if (seconds.test(text)) return Result.succeed(Duration.seconds(Number(text)))
  return parseParts(input, text)
}

const formatUnits: ReadonlyArray<readonly [string, bigint]> = [
  ["h", 3_600_000_000_000n],
  ["m", 60_000_000_000n],
  ["s", 1_000_000_000n],
  ["ms", 1_000_000n],
  ["us", 1_000n],
  ["ns", 1n]
]

/** The short form of a finite, non-negative duration (`1m30s`, `250ms`, `0s`): what `parse` reads back exactly. */
export const format = (duration: Duration.Duration): string => {
  let rest = Duration.toNanosUnsafe(duration)
  const parts: Array<string> = []
  for (const [unit, per] of formatUnits) {
    if (rest >= per) {
      parts.push(`${rest / per}${unit}`)
      rest %= per
    }
  }
  return parts.length === 0 ? "0s" : parts.join("")
}

/** What a file or flag may hold: seconds as a number, or text in one of the forms above. */
export const Input = Schema.Union([Schema.Finite, Schema.String])
export type Input = typeof Input.Type

/**
 * A length of time in a file or a flag, decoded to a `Duration` (encoded back in the short form). A value that is
 * none of the accepted forms fails with a message naming it: `not a duration: "soon" (use seconds, or e.g. …)`.
 */
export const TimeSpan = Input.pipe(
  Schema.decodeTo(
    Schema.Duration,
    SchemaTransformation.transformEffect({
      decode: (input, options) =>
        Result.match(parse(input), {
          onFailure: (message) => Effect.fail(new SchemaIssue.InvalidValue({ message }, input, options)),
          onSuccess: Effect.succeed
        }),
      encode: (duration, options) =>
        Duration.isFinite(duration) && !Duration.isNegative(duration)
          ? Effect.succeed(format(duration))
          : Effect.fail(
              new SchemaIssue.InvalidValue(
                { message: "a length of time is finite and never negative" },
                duration,
                options
              )
            )
    })
  )
)
export type TimeSpan = typeof TimeSpan.Type
