// The state of one replay run (one `ReplayServer.serve` call): what its connections did, its failures, which
// connections are open or were seen, and the two signals (finished, failed) its callers wait on.
import type * as Net from "node:net"
import { Clock, Deferred, type Duration, Effect } from "effect"
import type * as Fault from "../Fault.ts"
import type { Plan, Step } from "../Plan.ts"
import { type ReplayFailure, ScriptNotExhausted } from "../ReplayError.ts"
import type { Outcome, Summary } from "../ReplayServer.ts"

/** Where an open connection is in its script (what ScriptNotExhausted reports when the run ends). */
export interface Position {
  step: string
  remaining: number
}

export interface OpenConnection {
  readonly position: Position
  readonly closed: Deferred.Deferred<void>
}

export interface Settings {
  readonly plan: Plan
  /** The deadline of each step's client input, and how long a write may wait for a client that reads nothing. */
  readonly timeoutMs: number
  readonly rules: ReadonlyArray<Fault.FaultRule>
  /** Connections after which the run is done (compound_multi: its sub-scripts); undefined: serve until stopped. */
  readonly expected: number | undefined
  /** For a plain script: connections that must be opened (ScriptNotExhausted for each one missing). */
  readonly wanted: number
  readonly optionalConnections: boolean
}

export interface ServeState {
  readonly settings: Settings
  readonly now: () => number
  readonly counters: { -readonly [K in keyof Summary]: number }
  readonly failures: Array<ReplayFailure>
  readonly open: Map<number, OpenConnection>
  readonly seen: Set<number>
  /** Sockets still open: their bytes so far count in an outcome taken before they close. */
  readonly live: Set<Net.Socket>
  readonly finished: Deferred.Deferred<void>
  readonly failed: Deferred.Deferred<void>
  accepting: boolean
}

export const make = Effect.fn("ReplayServer.makeState")(function* (settings: Settings) {
  const clock = yield* Clock.Clock
  return {
    settings,
    now: () => clock.currentTimeMillisUnsafe(),
    counters: { connections: 0, completed: 0, stepsMatched: 0, bytesReceived: 0, bytesSent: 0, faultsInjected: 0 },
    failures: [],
    open: new Map(),
    seen: new Set(),
    live: new Set(),
    finished: yield* Deferred.make<void>(),
    failed: yield* Deferred.make<void>(),
    accepting: true
  } satisfies ServeState
})

/** The summary so far (open sockets' bytes included) and a copy of the failures. */
export const outcome = (state: ServeState): Outcome => {
  const summary = { ...state.counters }
  for (const socket of state.live) {
    summary.bytesReceived += socket.bytesRead
    summary.bytesSent += socket.bytesWritten
  }
  return { summary, failures: [...state.failures] }
}

/** Signals the waiters: failed at the first failure, finished then too or once every expected connection is done. */
export const settle = (state: ServeState): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (state.failures.length > 0) {
      return Effect.andThen(Deferred.succeed(state.failed, undefined), Deferred.succeed(state.finished, undefined))
    }
    const { expected } = state.settings
    return expected !== undefined && state.counters.completed >= expected
      ? Deferred.succeed(state.finished, undefined)
      : Effect.void
  })

/** Counts a socket's bytes once, when it is done (or when the run's scope ends it). */
export const track = (state: ServeState, socket: Net.Socket) =>
  Effect.acquireRelease(
    Effect.sync(() => state.live.add(socket)),
    () =>
      Effect.sync(() => {
        if (!state.live.delete(socket)) return
        state.counters.bytesReceived += socket.bytesRead
        state.counters.bytesSent += socket.bytesWritten
      })
  )

const neverOpened = (connection: number, steps: ReadonlyArray<Step>) =>
  new ScriptNotExhausted({
    connection,
    step: steps[0]?.path ?? "(empty script)",
    offset: 0,
    remainingSteps: steps.length,
    reason: "the client never opened this connection"
  })

/** Connections the script expects that no client opened (none when connections are optional). */
export const unopened = (state: ServeState): ReadonlyArray<ReplayFailure> => {
  const { plan, optionalConnections, wanted } = state.settings
  if (optionalConnections) return []
  if (plan._tag === "Multi") {
    return plan.connections.flatMap((steps, k) => (state.seen.has(k) ? [] : [neverOpened(k, steps)]))
  }
  if (plan.steps.length === 0) return []
  const missing: Array<ReplayFailure> = []
  for (let k = state.seen.size; k < wanted; k++) missing.push(neverOpened(k, plan.steps))
  return missing
}

/**
 * Ends the run: refuses new connections, gives open ones `grace` to finish, then counts the unfinished ones and
 * those no client opened as ScriptNotExhausted.
 */
export const finish = Effect.fn("ReplayServer.finish")(function* (state: ServeState, grace: Duration.Input) {
  state.accepting = false
  yield* Effect.forEach([...state.open.values()], (o) => Deferred.await(o.closed), { discard: true }).pipe(
    Effect.timeoutOption(grace)
  )
  for (const [index, o] of state.open) {
    state.failures.push(
      new ScriptNotExhausted({
        connection: index,
        step: o.position.step,
        offset: 0,
        remainingSteps: o.position.remaining,
        reason: "the run ended"
      })
    )
  }
  state.failures.push(...unopened(state))
  return outcome(state)
})
