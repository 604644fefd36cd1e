// Sends a step's response — bytes in memory, or a blob read from its file as it is sent — misbehaving as its
// fault says (delay, chunk, truncate, reset).
import { Duration, Effect, Stream } from "effect"
import type { BlobCorrupt } from "../BlobStore.ts"
import type * as Fault from "../Fault.ts"
import type { Response } from "../Plan.ts"
import type { Connection } from "./Connection.ts"
import type { ConnectionLost } from "./Tcp.ts"

/** Whether the response ended the connection (a truncate or reset fault). */
export type Ended = boolean

type Chunk = NonNullable<Fault.Fault["chunk"]>

const pause = (chunk: Chunk) =>
  chunk.pause === undefined ? Effect.void : Effect.sleep(Duration.millis(chunk.pause * 1000))

/** Writes `bytes` in pieces of `size` with `pause` between them. */
const chunked = Effect.fn("Respond.chunked")(function* (conn: Connection, bytes: Uint8Array, chunk: Chunk) {
  for (let i = 0; i < bytes.length; i += chunk.size) {
    if (i > 0) yield* pause(chunk)
    yield* conn.write(bytes.subarray(i, i + chunk.size))
  }
})

/**
 * Writes a blob's stream, at most `limit` bytes; with a chunk fault, in pieces of its size across the file's own
 * pieces (the carry holds what is short of a piece).
 */
const streamed = Effect.fn("Respond.streamed")(function* (
  conn: Connection,
  stream: Stream.Stream<Uint8Array, BlobCorrupt>,
  limit: number,
  chunk?: Chunk
) {
  if (limit <= 0) return
  let sent = 0
  let carry: Uint8Array = new Uint8Array(0)
  let first = true
  const piece = (bytes: Uint8Array) =>
    Effect.suspend(() => {
      if (chunk === undefined) return conn.write(bytes)
      const wait = first ? Effect.void : pause(chunk)
      first = false
      return Effect.andThen(wait, conn.write(bytes))
    })
  yield* Stream.runForEachWhile(stream, (data) =>
    Effect.gen(function* () {
      const bytes = data.length > limit - sent ? data.subarray(0, limit - sent) : data
      sent += bytes.length
      if (chunk === undefined) yield* piece(bytes)
      else {
        let all: Uint8Array = carry.length === 0 ? bytes : Buffer.concat([carry, bytes])
        while (all.length >= chunk.size) {
          yield* piece(all.subarray(0, chunk.size))
          all = all.subarray(chunk.size)
        }
        carry = all
      }
      return sent < limit
    })
  )
  if (carry.length > 0) yield* piece(carry)
})

const send = (conn: Connection, response: Response, limit: number, chunk: Chunk | undefined) => {
  if (!(response instanceof Uint8Array)) return streamed(conn, response.stream, limit, chunk)
  const bytes = limit < response.length ? response.subarray(0, limit) : response
  if (chunk !== undefined) return chunked(conn, bytes, chunk)
  return bytes.length > 0 ? conn.write(bytes) : Effect.void
}

export const respond = (
  conn: Connection,
  response: Response,
  fault: Fault.Fault | undefined
): Effect.Effect<Ended, ConnectionLost | BlobCorrupt> => {
  // The common case stays one write, without a generator.
  if (fault === undefined) {
    return response instanceof Uint8Array
      ? Effect.as(conn.write(response), false)
      : Effect.as(streamed(conn, response.stream, Number.POSITIVE_INFINITY), false)
  }
  return Effect.gen(function* () {
    if (fault.delay !== undefined) yield* Effect.sleep(Duration.millis(fault.delay * 1000))
    if (fault.reset === true) {
      yield* conn.reset
      return true
    }
    yield* send(conn, response, fault.truncate ?? Number.POSITIVE_INFINITY, fault.chunk)
    if (fault.truncate !== undefined) {
      yield* conn.end
      return true
    }
    return false
  })
}
