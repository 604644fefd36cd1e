// The client side of a replayed connection: byte-exact matching against expected bytes, within the step's deadline.
import { Effect, Option } from "effect"
import { LineTooLong, ScriptMismatch, ScriptNotExhausted, StepTimedOut } from "../ReplayError.ts"
import { firstDifference } from "./Bytes.ts"
import type { Connection } from "./Connection.ts"

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

/** The failure a pull owes its caller when the run of a step ends without bytes. */
type Ended = ScriptNotExhausted | StepTimedOut

export class Input {
  readonly conn: Connection
  readonly connection: number
  readonly timeoutMs: number
  readonly now: () => number

  constructor(conn: Connection, connection: number, timeoutMs: number, now: () => number) {
    this.conn = conn
    this.connection = connection
    this.timeoutMs = timeoutMs
    this.now = now
  }

  /** The next chunk; the run's end (EOF, reset, the deadline) becomes the failure the caller is owed. */
  next(at: Position, offset: number, expected: Uint8Array): Effect.Effect<Uint8Array, Ended> {
    return this.conn.readWithin(Math.max(0, at.deadline - this.now())).pipe(
      Effect.mapError((lost) => this.notExhausted(at, offset, `the connection was lost (${lost.reason})`)),
      Effect.flatMap((result): Effect.Effect<Uint8Array, Ended> => {
        if (Option.isNone(result)) {
          const { connection, timeoutMs } = this
          return Effect.fail(new StepTimedOut({ connection, step: at.step, timeoutMs, offset, expected }))
        }
        if (Option.isNone(result.value)) {
          return Effect.fail(this.notExhausted(at, offset, "the client closed the connection"))
        }
        return Effect.succeed(result.value.value)
      })
    )
  }

  notExhausted(at: Position, offset: number, reason: string): ScriptNotExhausted {
    return new ScriptNotExhausted({
      connection: this.connection,
      step: at.step,
      offset,
      remainingSteps: at.remaining,
      reason
    })
  }

  /** Reads exactly `expected`, failing with ScriptMismatch at the first differing byte. */
  expect(expected: Uint8Array, at: Position): Effect.Effect<void, ScriptMismatch | Ended> {
    const input = this
    return Effect.gen(function* () {
      let matched = 0
      while (matched < expected.length) {
        const chunk = yield* input.next(at, matched, expected)
        const need = expected.length - matched
        const part = chunk.length > need ? chunk.subarray(0, need) : chunk
        const diff = firstDifference(part, expected.subarray(matched, matched + part.length))
        if (diff >= 0) {
          const received = Buffer.concat([expected.subarray(0, matched), chunk, input.conn.buffered()])
          const { connection } = input
          return yield* new ScriptMismatch({ connection, step: at.step, offset: matched + diff, expected, received })
        }
        matched += part.length
        if (chunk.length > need) input.conn.unread(chunk.subarray(need))
      }
    })
  }

  /** Reads until `done` finds the end; `overflow` bounds what is held while looking (an error once too much). */
  readUntil<E>(
    at: Position,
    done: (bytes: Buffer) => number,
    overflow: (bytes: Buffer) => E | undefined
  ): Effect.Effect<Uint8Array, E | Ended> {
    const input = this
    return Effect.gen(function* () {
      let acc = Buffer.alloc(0)
      while (true) {
        const chunk = yield* input.next(at, acc.length, new Uint8Array(0))
        acc = Buffer.concat([acc, chunk])
        const end = done(acc)
        if (end >= 0) {
          input.conn.unread(acc.subarray(end))
          return new Uint8Array(acc.subarray(0, end))
        }
        const error = overflow(acc)
        if (error !== undefined) return yield* Effect.fail(error)
      }
    })
  }

  /** One line, `\n` included; LineTooLong beyond `maxLineBytes`. */
  readLine(at: Position): Effect.Effect<Uint8Array, LineTooLong | Ended> {
    return this.readUntil(
      at,
      (bytes) => {
        const i = bytes.indexOf(0x0a)
        return i < 0 || i >= maxLineBytes ? -1 : i + 1
      },
      (bytes) =>
        bytes.length > maxLineBytes
          ? new LineTooLong({
              connection: this.connection,
              step: at.step,
              limit: maxLineBytes,
              head: bytes.subarray(0, 48)
            })
          : undefined
    )
  }

  /** Exactly `n` bytes. */
  readBytes(n: number, at: Position): Effect.Effect<Uint8Array, Ended> {
    if (n === 0) return Effect.succeed(new Uint8Array(0))
    return this.readUntil<never>(
      at,
      (bytes) => (bytes.length >= n ? n : -1),
      () => undefined
    )
  }
}
