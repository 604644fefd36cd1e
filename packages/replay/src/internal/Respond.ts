// Sends a step's response, misbehaving as its fault says (delay, chunk, truncate, reset).
import { Duration, Effect } from "effect"
import type * as Fault from "../Fault.ts"
import type { Connection, ConnectionLost } from "./Tcp.ts"

/** Whether the response ended the connection (a truncate or reset fault). */
export type Ended = boolean

/** Writes `bytes` in pieces of `size` with `pause` between them. */
const chunked = (conn: Connection, bytes: Uint8Array, chunk: NonNullable<Fault.Fault["chunk"]>) =>
  Effect.gen(function* () {
    for (let i = 0; i < bytes.length; i += chunk.size) {
      if (i > 0 && chunk.pause !== undefined) yield* Effect.sleep(Duration.millis(chunk.pause * 1000))
      yield* conn.write(bytes.subarray(i, i + chunk.size))
    }
  })

export const respond = (
  conn: Connection,
  response: Uint8Array,
  fault: Fault.Fault | undefined
): Effect.Effect<Ended, ConnectionLost> => {
  // The common case stays one write, without a generator.
  if (fault === undefined) return Effect.as(conn.write(response), false)
  return Effect.gen(function* () {
    if (fault.delay !== undefined) yield* Effect.sleep(Duration.millis(fault.delay * 1000))
    if (fault.reset === true) {
      yield* conn.reset
      return true
    }
    const bytes = fault.truncate !== undefined ? response.subarray(0, fault.truncate) : response
    if (fault.chunk !== undefined) yield* chunked(conn, bytes, fault.chunk)
    else if (bytes.length > 0) yield* conn.write(bytes)
    if (fault.truncate !== undefined) {
      yield* conn.end
      return true
    }
    return false
  })
}
