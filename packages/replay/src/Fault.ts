/**
 * Faults: ways to misbehave while answering, to test a client's robustness with the same recording.
 * Given per step in a script (`"fault": {...}`, a testbed extension) or from the command line
 * (`--fault KIND[=VALUE][@STEP]`), where STEP is the ordinal (from 1) of the response on each connection.
 */
import { Effect, Runtime, Schema } from "effect"
import { ExitCode } from "@testbed/events"

const Seconds = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

export const Fault = Schema.Struct({
  /** Seconds to wait before answering. */
  delay: Schema.optionalKey(Seconds),
  /** Send the response in pieces of `size` bytes with `pause` seconds between them. */
  chunk: Schema.optionalKey(
    Schema.Struct({ size: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)), pause: Schema.optionalKey(Seconds) })
  ),
  /** Send only the first N bytes of the response, then close the connection (FIN). */
  truncate: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /** Reset the connection (RST) instead of answering. */
  reset: Schema.optionalKey(Schema.Boolean)
})
export type Fault = typeof Fault.Type

/** A command-line fault: applies to the response with this ordinal on every connection, or to all. */
export interface FaultRule {
  readonly step: number | undefined
  readonly fault: Fault
}

export class FaultSpecInvalid extends Schema.TaggedError<FaultSpecInvalid>()("FaultSpecInvalid", {
  spec: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `invalid --fault "${this.spec}": ${this.reason} (forms: delay=SECONDS, chunk=SIZE[/PAUSE], truncate=BYTES, reset; each optionally @STEP)`
  }
}

/** Parses `delay=0.5`, `chunk=4/0.01`, `truncate=10@2`, `reset@3`. */
export const parseRule = Effect.fn("Fault.parseRule")(function* (spec: string) {
  const fail = (reason: string) => Effect.fail(new FaultSpecInvalid({ spec, reason }))
  const [body = "", stepText, ...rest] = spec.split("@")
  if (rest.length > 0) return yield* fail("more than one @")
  let step: number | undefined
  if (stepText !== undefined) {
    step = Number(stepText)
    if (!Number.isInteger(step) || step < 1) return yield* fail("STEP is a response number from 1")
  }
  const [kind, value] = body.split("=", 2) as [string, string | undefined]
  const number = (text: string | undefined, what: string) =>
    text !== undefined && text !== "" && Number.isFinite(Number(text)) && Number(text) >= 0
      ? Effect.succeed(Number(text))
      : fail(`${kind} needs ${what}`)
  switch (kind) {
    case "delay":
      return { step, fault: { delay: yield* number(value, "a number of seconds") } }
    case "truncate": {
      const bytes = yield* number(value, "a number of bytes")
      if (!Number.isInteger(bytes)) return yield* fail("truncate needs a whole number of bytes")
      return { step, fault: { truncate: bytes } }
    }
    case "chunk": {
      const [sizeText, pauseText] = (value ?? "").split("/", 2)
      const size = yield* number(sizeText, "a chunk size")
      if (!Number.isInteger(size) || size < 1) return yield* fail("chunk size is a whole number ≥ 1")
      const pause = pauseText === undefined ? 0 : yield* number(pauseText, "a pause in seconds")
      return { step, fault: { chunk: { size, pause } } }
    }
    case "reset":
      if (value !== undefined) return yield* fail("reset takes no value")
      return { step, fault: { reset: true } }
    default:
      return yield* fail(`unknown fault "${kind}"`)
  }
})

/** The fault for the n-th response: the script's own, with command-line rules laid over it. */
export const forStep = (
  own: Fault | undefined,
  rules: ReadonlyArray<FaultRule>,
  ordinal: number
): Fault | undefined => {
  let fault = own
  for (const rule of rules) {
    if (rule.step === undefined || rule.step === ordinal) fault = { ...fault, ...rule.fault }
  }
  return fault
}
