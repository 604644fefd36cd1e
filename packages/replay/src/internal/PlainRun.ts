// The hot path of a replay: a run of plain exchanges (the response in memory, no fault) matched and answered
// straight from the socket's callbacks, the way a hand-written server would, with one Effect resume per run instead
// of a fiber step per read. One timer per run: it is armed once and, when it fires before the current step's
// deadline (the run moved on), armed again for the rest. The guarantees are the Effect path's (Input, Respond): the
// same deadline per step, the same failures with the same fields, back-pressure on writes (the run stops and the
// fiber waits for the drain with its stall bound).
import { Effect, Option } from "effect"
import * as Fault from "../Fault.ts"
import type { Step } from "../Plan.ts"
import { type ReplayFailure, ScriptMismatch, StepTimedOut } from "../ReplayError.ts"
import { firstDifference } from "./Bytes.ts"
import type { Session } from "./Session.ts"
import type { ConnectionLost } from "./Tcp.ts"

export interface Ran {
  /** The first step the run did not take (not plain, or past the end). */
  readonly next: number
  /** The last response filled the socket's buffer: wait for its drain before the next step. */
  readonly drain: boolean
}

type Exchange = Extract<Step, { _tag: "Exchange" }>

/** Whether the step can run on the hot path: an exchange answered from memory, without a fault. */
export const isPlain = (session: Session, step: Step, ordinal: number): step is Exchange =>
  step._tag === "Exchange" &&
  step.response instanceof Uint8Array &&
  (step.fault === undefined && session.state.settings.rules.length === 0
    ? true
    : Fault.forStep(step.fault, session.state.settings.rules, ordinal) === undefined)

/** Below this many bytes a loop compares faster than a call into Buffer.compare (its checks and offsets). */
const loopBelow = 256

/** Index of the first of `length` bytes where `received` and `expected[from…]` differ; -1 when they agree. */
const differsAt = (received: Uint8Array, expected: Uint8Array, from: number, length: number): number => {
  if (length >= loopBelow) {
    const view = Buffer.from(received.buffer, received.byteOffset, length)
    if (view.compare(expected, from, from + length) === 0) return -1
    return firstDifference(view, expected.subarray(from, from + length))
  }
  for (let i = 0; i < length; i++) if (received[i] !== expected[from + i]) return i
  return -1
}

class PlainRun {
  private readonly session: Session
  private readonly steps: ReadonlyArray<Step>
  private readonly ordinal: { responses: number }
  private readonly resume: (effect: Effect.Effect<Ran, ReplayFailure>) => void
  private readonly onReadable = () => this.pump()
  private i: number
  private matched = 0
  private deadline = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private settled = false

  constructor(
    session: Session,
    steps: ReadonlyArray<Step>,
    from: number,
    ordinal: { responses: number },
    resume: (effect: Effect.Effect<Ran, ReplayFailure>) => void
  ) {
    this.session = session
    this.steps = steps
    this.i = from
    this.ordinal = ordinal
    this.resume = resume
  }

  /** A step starts: where the run is (for ScriptNotExhausted at the end of the run), and its deadline. */
  private begin(step: Step): void {
    const { position, state } = this.session
    position.step = step.path
    position.remaining = this.steps.length - this.i
    this.matched = 0
    this.deadline = state.now() + state.settings.timeoutMs
  }

  private settle(effect: Effect.Effect<Ran, ReplayFailure>): void {
    if (this.settled) return
    this.stop()
    this.resume(effect)
  }

  stop(): void {
    this.settled = true
    clearTimeout(this.timer)
    this.timer = undefined
    this.session.conn.whenReadable(undefined)
  }

  private onTimer = () => {
    this.timer = undefined
    const left = this.deadline - this.session.state.now()
    if (left > 0) {
      this.timer = setTimeout(this.onTimer, left)
      return
    }
    const step = this.steps[this.i] as Exchange
    const { index: connection, state } = this.session
    const { timeoutMs } = state.settings
    this.settle(
      Effect.fail(
        new StepTimedOut({ connection, step: step.path, timeoutMs, offset: this.matched, expected: step.command })
      )
    )
  }

  /** Nothing more can come: the failure of the step waiting for input. */
  private ended(end: Option.Option<never> | ConnectionLost): void {
    const { input } = this.session
    const at = this.session.position
    const reason = Option.isOption(end) ? "the client closed the connection" : `the connection was lost (${end.reason})`
    this.settle(
      Effect.fail(input.notExhausted({ step: at.step, remaining: at.remaining, deadline: 0 }, this.matched, reason))
    )
  }

  /** Matches the step's command against what has arrived; false when it must wait (or the run has settled). */
  private match(step: Exchange): boolean {
    const { conn, index: connection } = this.session
    const expected = step.command
    while (this.matched < expected.length) {
      const chunk = conn.takeChunk()
      if (chunk === undefined) {
        const end = conn.ending()
        if (end !== undefined) this.ended(end)
        else {
          conn.whenReadable(this.onReadable)
          this.timer ??= setTimeout(this.onTimer, Math.max(0, this.deadline - this.session.state.now()))
        }
        return false
      }
      const need = expected.length - this.matched
      const take = Math.min(need, chunk.length)
      const diff = differsAt(chunk, expected, this.matched, take)
      if (diff >= 0) {
        const received = Buffer.concat([expected.subarray(0, this.matched), chunk, conn.buffered()])
        const offset = this.matched + diff
        this.settle(Effect.fail(new ScriptMismatch({ connection, step: step.path, offset, expected, received })))
        return false
      }
      this.matched += take
      if (chunk.length > take) conn.unread(chunk.subarray(take))
    }
    return true
  }

  /** Runs steps until one is not plain, input is missing, or a response fills the socket's buffer. */
  pump(): void {
    const { conn, state } = this.session
    while (!this.settled) {
      const step = this.steps[this.i]
      if (step === undefined || !isPlain(this.session, step, this.ordinal.responses + 1)) {
        this.settle(Effect.succeed({ next: this.i, drain: false }))
        return
      }
      if (!this.match(step)) return
      state.counters.stepsMatched++
      this.ordinal.responses++
      const socket = conn.socket
      if (socket.destroyed || socket.writableEnded) {
        this.settle(Effect.fail(this.session.lost(conn.failureReason() ?? "connection closed")))
        return
      }
      this.i++
      const response = step.response as Uint8Array
      const flushed = response.length === 0 || socket.write(response)
      if (!flushed) {
        this.settle(Effect.succeed({ next: this.i, drain: true }))
        return
      }
      const next = this.steps[this.i]
      if (next !== undefined) this.begin(next)
    }
  }

  start(): void {
    const step = this.steps[this.i]
    if (step !== undefined) this.begin(step)
    this.pump()
  }
}

/** Runs the plain exchanges from step `from` on; the caller runs the first step it did not take. */
export const run = (
  session: Session,
  steps: ReadonlyArray<Step>,
  from: number,
  ordinal: { responses: number }
): Effect.Effect<Ran, ReplayFailure> =>
  Effect.callback<Ran, ReplayFailure>((resume) => {
    const plain = new PlainRun(session, steps, from, ordinal, resume)
    plain.start()
    return Effect.sync(() => plain.stop())
  })
