// One accepted connection of a replay run: picks its steps (compound_multi: by accept order), runs them against the
// client's bytes, and records how it ended in the run's state.
import type * as Net from "node:net"
import { Deferred, Effect, Exit, Option } from "effect"
import { type ConnectionState, makeConnectionState } from "../Action.ts"
import type { Step } from "../Plan.ts"
import { ScriptMismatch, UnexpectedConnection } from "../ReplayError.ts"
import { actionIO } from "./ActionIO.ts"
import type * as Input from "./Input.ts"
import { runExchange } from "./ServeExchange.ts"
import * as PlainRun from "./PlainRun.ts"
import * as Session from "./Session.ts"
import * as ServeState from "./ServeState.ts"
import * as Connection from "./Connection.ts"

/** Runs one step that is not plain (a faulted or streamed response, a sleep, an action); true when it ended the connection. */
const runStep = Effect.fnUntraced(function* (
  session: Session.Session,
  steps: ReadonlyArray<Step>,
  i: number,
  ordinal: { responses: number },
  actionState: ConnectionState
) {
  const { state, position } = session
  const step = steps[i]!
  const at: Input.Position = {
    step: step.path,
    remaining: steps.length - i,
    deadline: state.now() + state.settings.timeoutMs
  }
  position.step = step.path
  position.remaining = at.remaining
  if (step._tag === "Exchange") return yield* runExchange(session, step, at, ordinal)
  if (step._tag === "Sleep") yield* Effect.sleep(step.duration)
  else yield* step.prepared.run(actionIO(session, step, at), actionState)
  return false
})

/**
 * Runs the steps in order: plain exchanges on the hot path (PlainRun), the others as effects; the connection ends
 * after the last (or after a fault that ends it).
 */
const runSteps = Effect.fn("ReplayServer.runSteps")(function* (session: Session.Session, steps: ReadonlyArray<Step>) {
  const actionState = makeConnectionState()
  const ordinal = { responses: 0 }
  let i = 0
  while (i < steps.length) {
    if (PlainRun.isPlain(session, steps[i]!, ordinal.responses + 1)) {
      const ran = yield* PlainRun.run(session, steps, i, ordinal)
      i = ran.next
      if (ran.drain) yield* session.conn.drained().pipe(Effect.mapError((e) => session.lost(e.reason)))
      continue
    }
    if (yield* runStep(session, steps, i, ordinal, actionState)) return
    i++
  }
  session.position.step = "(end of script)"
  session.position.remaining = 0
  yield* beyondTheEnd(session)
})

/** Bytes the client sent beyond the script are a divergence too; its own close after ours is not. */
const beyondTheEnd = Effect.fn("ReplayServer.beyondTheEnd")(function* (session: Session.Session) {
  const { conn } = session
  yield* conn.end
  const extra = yield* conn.read.pipe(
    Effect.timeoutOption(Math.min(session.state.settings.timeoutMs, 1000)),
    Effect.map(Option.flatten),
    Effect.orElseSucceed(() => Option.none<Uint8Array>())
  )
  const received = Buffer.concat([Option.getOrElse(extra, () => new Uint8Array(0)), conn.buffered()])
  if (received.length > 0) {
    return yield* new ScriptMismatch({
      connection: session.index,
      step: "(end of script)",
      offset: 0,
      expected: new Uint8Array(0),
      received
    })
  }
})

/** The steps of the connection with this accept index, or undefined when the script has none for it. */
const stepsOf = (state: ServeState.ServeState, index: number): ReadonlyArray<Step> | undefined => {
  const { plan } = state.settings
  return plan._tag === "Single" ? plan.steps : plan.connections[index]
}

/** Runs the connection's steps and records its end: completed, or its failure (then the connection is reset). */
const replayConnection = Effect.fn("ReplayServer.replayConnection")(function* (
  state: ServeState.ServeState,
  conn: Connection.Connection,
  index: number,
  steps: ReadonlyArray<Step>
) {
  state.seen.add(index)
  const open: ServeState.OpenConnection = {
    position: { step: steps[0]?.path ?? "(empty script)", remaining: steps.length },
    closed: yield* Deferred.make<void>()
  }
  state.open.set(index, open)
  const exit = yield* Effect.exit(runSteps(Session.make(state, conn, index, open.position), steps))
  state.open.delete(index)
  yield* Deferred.succeed(open.closed, undefined)
  if (Exit.isFailure(exit)) {
    const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
    if (failure !== undefined && failure._tag === "Fail") state.failures.push(failure.error)
    yield* conn.reset
  } else {
    state.counters.completed++
    yield* conn.awaitClose(1000)
  }
})

const connection = Effect.fn("ReplayServer.connection")(function* (
  state: ServeState.ServeState,
  socket: Net.Socket,
  index: number
) {
  const conn = yield* Connection.connection(socket, { writeStallMs: state.settings.timeoutMs })
  if (!state.accepting) return
  yield* ServeState.track(state, socket)
  state.counters.connections++
  const steps = stepsOf(state, index)
  if (steps === undefined) {
    const { plan } = state.settings
    state.failures.push(
      new UnexpectedConnection({ connection: index, expected: plan._tag === "Multi" ? plan.connections.length : 0 })
    )
  } else {
    yield* replayConnection(state, conn, index, steps)
  }
  yield* ServeState.settle(state)
})

/** The handler of accepted sockets for `Tcp.listen`: each connection in a scope of its own. */
export const handler =
  (state: ServeState.ServeState) =>
  (socket: Net.Socket, index: number): Effect.Effect<void> =>
    Effect.scoped(connection(state, socket, index))
