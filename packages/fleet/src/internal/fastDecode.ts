// Hand-written decoders for the two messages on the hot path (a command at the agent, an answer at the operator):
// `JSON.parse` and a type check per field, which cost a fraction of the Schema decoder's work per message. They
// accept only what the Schema accepts, plainly written (every field of its expected type, nothing odd); anything
// else — garbage, a wrong type, a non-finite number — returns `undefined` and the caller asks the Schema, which
// stays the judge. `test/FastDecode.test.ts` checks, over generated messages, that both give the same result.
import type { CommandMessage, ResponseMessage, ResponseStatus } from "../Protocol.ts"

type Fields = Record<string, unknown>

/** The parsed object, or `undefined` for anything that is not a JSON object (the Schema then says why). */
const parseObject = (payload: string): Fields | undefined => {
  if (payload.charCodeAt(0) !== 123 /* { */) return undefined
  // JSON.parse throws on garbage: this is plain code outside any effect, and the fallback decides what garbage is.
  let parsed: unknown
  try {
    parsed = JSON.parse(payload)
  } catch {
    return undefined
  }
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Fields) : undefined
}

/** A marker for "not plainly valid": the Schema decides. */
const unusual: unique symbol = Symbol("unusual")
type Checked<A> = A | undefined | typeof unusual

const str = (value: unknown): Checked<string> =>
  value === undefined ? undefined : typeof value === "string" ? value : unusual
const finite = (value: unknown): Checked<number> =>
  value === undefined ? undefined : typeof value === "number" && Number.isFinite(value) ? value : unusual
const bool = (value: unknown): Checked<boolean> =>
  value === undefined ? undefined : typeof value === "boolean" ? value : unusual
const intOrNull = (value: unknown): Checked<number | null> =>
  value === undefined || value === null ? value : Number.isSafeInteger(value) ? (value as number) : unusual
const strOrNull = (value: unknown): Checked<string | null> => (value === null ? null : str(value))

const statuses: ReadonlySet<unknown> = new Set<ResponseStatus>([
  "succeeded",
  "failed",
  "timed_out",
  "refused",
  "interrupted",
  "error"
])
const status = (value: unknown): Checked<ResponseStatus> =>
  value === undefined ? undefined : statuses.has(value) ? (value as ResponseStatus) : unusual

/**
 * Copies the checked fields in the Schema's order (so a re-encoded message reads the same either way); `false` when
 * one is unusual. Absent optional fields stay absent, as `optionalKey` leaves them.
 */
const collect = (out: Fields, fields: ReadonlyArray<readonly [string, unknown]>): boolean => {
  for (const [key, value] of fields) {
    if (value === unusual) return false
    if (value !== undefined) out[key] = value
  }
  return true
}

/** A JSON command, when plainly valid; `undefined`: ask the Schema. */
export const command = (payload: string): CommandMessage | undefined => {
  const o = parseObject(payload)
  if (o === undefined || typeof o.client_id !== "string" || typeof o.command !== "string") return undefined
  const out: Fields = { client_id: o.client_id, command: o.command }
  const ok = collect(out, [
    ["command_id", str(o.command_id)],
    ["timestamp", finite(o.timestamp)],
    ["signature", str(o.signature)],
    ["timeout", finite(o.timeout)]
  ])
  return ok ? (out as CommandMessage) : undefined
}

/** A JSON answer, when plainly valid; `undefined`: ask the Schema. */
export const response = (payload: string): ResponseMessage | undefined => {
  const o = parseObject(payload)
  if (o === undefined) return undefined
  const { client_id, command, start_time, end_time, error } = o
  if (
    typeof client_id !== "string" ||
    typeof command !== "string" ||
    typeof start_time !== "string" ||
    typeof end_time !== "string"
  )
    return undefined
  const out: Fields = { client_id, command, start_time, end_time }
  const head = collect(out, [["output", str(o.output)]])
  if (!head || typeof error !== "string") return undefined
  out.error = error
  const ok = collect(out, [
    ["exit_code", intOrNull(o.exit_code)],
    ["signal", o.signal === undefined ? undefined : strOrNull(o.signal)],
    ["command_id", str(o.command_id)],
    ["duration", finite(o.duration)],
    ["timed_out", bool(o.timed_out)],
    ["status", status(o.status)],
    ["refusal", str(o.refusal)],
    ["failure", str(o.failure)],
    ["signature", str(o.signature)]
  ])
  return ok ? (out as ResponseMessage) : undefined
}
