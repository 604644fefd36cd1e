// The client side of a replayed connection: byte-exact matching against expected bytes, with a read timeout.
import { Effect, Option } from "effect"
import { ScriptMismatch, ScriptNotExhausted, StepTimedOut } from "../ReplayError.ts"
import { firstDifference } from "./Bytes.ts"
import type { Connection } from "./Tcp.ts"

export interface Position {
  readonly step: string
  /** Steps of the script not yet done, this one included. */
  readonly remaining: number
}

export interface Input {
  readonly expect: (
    expected: Uint8Array,
    at: Position
  ) => Effect.Effect<void, ScriptMismatch | ScriptNotExhausted | StepTimedOut>
  readonly readLine: (at: Position) => Effect.Effect<Uint8Array, ScriptNotExhausted | StepTimedOut>
  readonly readBytes: (n: number, at: Position) => Effect.Effect<Uint8Array, ScriptNotExhausted | StepTimedOut>
}

export const make = (conn: Connection, connection: number, timeoutMs: number): Input => {
  /** The next chunk; the run's end (EOF, reset, timeout) becomes the failure the caller is owed. */
  const next = (
    at: Position,
    offset: number,
    expected: Uint8Array
  ): Effect.Effect<Uint8Array, ScriptNotExhausted | StepTimedOut> =>
    conn.readWithin(timeoutMs).pipe(
      Effect.mapError(
        (lost) =>
          new ScriptNotExhausted({
            connection,
            step: at.step,
            offset,
            remainingSteps: at.remaining,
            reason: `the connection was lost (${lost.reason})`
          })
      ),
      Effect.flatMap((result): Effect.Effect<Uint8Array, ScriptNotExhausted | StepTimedOut> => {
        if (Option.isNone(result)) {
          return Effect.fail(new StepTimedOut({ connection, step: at.step, timeoutMs, offset, expected }))
        }
        if (Option.isNone(result.value)) {
          return Effect.fail(
            new ScriptNotExhausted({
              connection,
              step: at.step,
              offset,
              remainingSteps: at.remaining,
              reason: "the client closed the connection"
            })
          )
        }
        return Effect.succeed(result.value.value)
      })
    )

  const expect: Input["expect"] = (expected, at) =>
    Effect.gen(function* () {
      let matched = 0
      while (matched < expected.length) {
        const chunk = yield* next(at, matched, expected)
        const need = expected.length - matched
        const part = chunk.length > need ? chunk.subarray(0, need) : chunk
        const diff = firstDifference(part, expected.subarray(matched, matched + part.length))
        if (diff >= 0) {
          const received = Buffer.concat([expected.subarray(0, matched), chunk, conn.buffered()])
          return yield* new ScriptMismatch({ connection, step: at.step, offset: matched + diff, expected, received })
        }
        matched += part.length
        if (chunk.length > need) conn.unread(chunk.subarray(need))
      }
    })

  const readUntil = (at: Position, done: (bytes: Buffer) => number) =>
    Effect.gen(function* () {
      let acc = Buffer.alloc(0)
      while (true) {
        const chunk = yield* next(at, acc.length, new Uint8Array(0))
        acc = Buffer.concat([acc, chunk])
        const end = done(acc)
        if (end >= 0) {
          conn.unread(acc.subarray(end))
          return new Uint8Array(acc.subarray(0, end))
        }
      }
    })

  return {
    expect,
    readLine: (at) =>
      readUntil(at, (bytes) => {
        const i = bytes.indexOf(0x0a)
        return i < 0 ? -1 : i + 1
      }),
    readBytes: (n, at) =>
      n === 0 ? Effect.succeed(new Uint8Array(0)) : readUntil(at, (bytes) => (bytes.length >= n ? n : -1))
  }
}
