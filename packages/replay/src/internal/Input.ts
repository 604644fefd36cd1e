// The client side of a replayed connection: byte-exact matching against expected bytes, within the step's deadline.
import { Effect, Option } from "effect"
import { LineTooLong, ScriptMismatch, ScriptNotExhausted, StepTimedOut } from "../ReplayError.ts"
import { firstDifference } from "./Bytes.ts"
import type { Connection } from "./Tcp.ts"

/** The longest line `readLine` accepts (NDS request lines are tens of bytes): beyond it, LineTooLong. */
export const maxLineBytes = 64 * 1024

export interface Position {
  readonly step: string
  /** Steps of the script not yet done, this one included. */
  readonly remaining: number
  /**
   * When the client's input for this step must have arrived (ms, the clock of `now`). One deadline per step, not
   * per read: a client trickling bytes cannot keep a step alive. An action's write moves it (the client's turn).
   */
  deadline: number
}

export interface Input {
  readonly expect: (
    expected: Uint8Array,
    at: Position
  ) => Effect.Effect<void, ScriptMismatch | ScriptNotExhausted | StepTimedOut>
  readonly readLine: (at: Position) => Effect.Effect<Uint8Array, ScriptNotExhausted | StepTimedOut | LineTooLong>
  readonly readBytes: (n: number, at: Position) => Effect.Effect<Uint8Array, ScriptNotExhausted | StepTimedOut>
}

export const make = (conn: Connection, connection: number, timeoutMs: number, now: () => number): Input => {
  /** The next chunk; the run's end (EOF, reset, the deadline) becomes the failure the caller is owed. */
  const next = (
    at: Position,
    offset: number,
    expected: Uint8Array
  ): Effect.Effect<Uint8Array, ScriptNotExhausted | StepTimedOut> =>
    conn.readWithin(Math.max(0, at.deadline - now())).pipe(
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

  /** Reads until `done` finds the end; `overflow` bounds what is held while looking (an error once too much). */
  const readUntil = <E>(at: Position, done: (bytes: Buffer) => number, overflow: (bytes: Buffer) => E | undefined) =>
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
        const error = overflow(acc)
        if (error !== undefined) return yield* Effect.fail(error)
      }
    })

  const lineTooLong = (at: Position) => (bytes: Buffer) =>
    bytes.length > maxLineBytes
      ? new LineTooLong({ connection, step: at.step, limit: maxLineBytes, head: bytes.subarray(0, 48) })
      : undefined
  const unbounded = () => undefined

  return {
    expect,
    readLine: (at) =>
      readUntil(
        at,
        (bytes) => {
          const i = bytes.indexOf(0x0a)
          return i < 0 || i >= maxLineBytes ? -1 : i + 1
        },
        lineTooLong(at)
      ),
    readBytes: (n, at) =>
      n === 0 ? Effect.succeed(new Uint8Array(0)) : readUntil(at, (bytes) => (bytes.length >= n ? n : -1), unbounded)
  }
}
