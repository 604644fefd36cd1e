/**
 * Serves a loaded script as a deterministic fake server: each connection runs its steps concurrently
 * (compound_multi: the k-th accepted connection runs the k-th sub-script), client bytes are matched raw and
 * the first differing byte fails the connection. Faults misbehave on purpose while answering.
 */
import type * as Net from "node:net"
import { Clock, Console, Context, Deferred, Duration, Effect, Exit, Layer, Option, type Scope } from "effect"
import { type ActionIO, makeConnectionState } from "./Action.ts"
import * as Fault from "./Fault.ts"
import * as Input from "./internal/Input.ts"
import { respond } from "./internal/Respond.ts"
import * as Tcp from "./internal/Tcp.ts"
import type { Plan, Step } from "./Plan.ts"
import {
  ActionFailed,
  type ReplayFailure,
  ResponseUnreadable,
  ScriptMismatch,
  ScriptNotExhausted,
  UnexpectedConnection
} from "./ReplayError.ts"

export interface ServeOptions {
  readonly host?: string | undefined
  /** 0 (the default) picks a free port. */
  readonly port?: number | undefined
  /**
   * The deadline of a step's client input, from the step's start (an action's writes restart it): StepTimedOut
   * when it passes, however the bytes trickle in. Also how long a response may wait for a client that reads
   * nothing. Default 10 seconds.
   */
  readonly stepTimeout?: Duration.Input | undefined
  /** Command-line faults, laid over the script's own. */
  readonly faults?: ReadonlyArray<Fault.FaultRule> | undefined
  /** For a plain script: the run is done after this many connections (default: never, serve until stopped). */
  readonly connections?: number | undefined
  /** Print `Test server listening on HOST:PORT` once listening (default true). */
  readonly announce?: boolean | undefined
  /**
   * Connections the script expects but no client opened are not failures (default false: a script whose steps
   * went unused — the client never connected — fails with ScriptNotExhausted).
   */
  readonly optionalConnections?: boolean | undefined
}

export interface Summary {
  readonly connections: number
  readonly completed: number
  readonly stepsMatched: number
  readonly bytesReceived: number
  readonly bytesSent: number
  readonly faultsInjected: number
}

export interface Outcome {
  readonly summary: Summary
  /** Empty when the replay passed. */
  readonly failures: ReadonlyArray<ReplayFailure>
}

export interface RunningServer {
  readonly host: string
  readonly port: number
  /** Waits until every expected connection is done (compound_multi, or `connections`) or one failed. */
  readonly done: Effect.Effect<Outcome>
  /** Completes when the replay has failed (its first failure); never when it passes. */
  readonly failed: Effect.Effect<void>
  /**
   * Ends the run: refuses new connections, gives open ones `grace` to finish, then counts what is unfinished
   * (open connections; connections the script expects that no client opened, unless optional) as
   * ScriptNotExhausted. The summary counts the bytes of every connection, those still open included.
   */
  readonly finish: (grace: Duration.Input) => Effect.Effect<Outcome>
}

/** One line for humans. */
export const formatSummary = (s: Summary): string =>
  `Replay summary: ${s.connections} connection(s), ${s.completed} completed, ${s.stepsMatched} step(s) matched, ` +
  `${s.bytesReceived} byte(s) received, ${s.bytesSent} byte(s) sent${s.faultsInjected > 0 ? `, ${s.faultsInjected} fault(s) injected` : ""}`

export const defaultStepTimeout = Duration.seconds(10)

export class ReplayServer extends Context.Service<
  ReplayServer,
  {
    readonly serve: (plan: Plan, options?: ServeOptions) => Effect.Effect<RunningServer, Tcp.ListenFailed, Scope.Scope>
  }
>()("@testbed/replay/ReplayServer") {
  static readonly layer = Layer.succeed(
    ReplayServer,
    ReplayServer.of({ serve: (plan, options) => serve(plan, options) })
  )
}

interface Open {
  readonly position: { step: string; remaining: number }
  readonly closed: Deferred.Deferred<void>
}

const neverOpened = (connection: number, steps: ReadonlyArray<Step>) =>
  new ScriptNotExhausted({
    connection,
    step: steps[0]?.path ?? "(empty script)",
    offset: 0,
    remainingSteps: steps.length,
    reason: "the client never opened this connection"
  })

export const serve = Effect.fn("ReplayServer.serve")(function* (plan: Plan, options: ServeOptions = {}) {
  const timeoutMs = Duration.toMillis(Duration.fromInputUnsafe(options.stepTimeout ?? defaultStepTimeout))
  const clock = yield* Clock.Clock
  const now = () => clock.currentTimeMillisUnsafe()
  const rules = options.faults ?? []
  const expected = plan._tag === "Multi" ? plan.connections.length : options.connections
  const counters = { connections: 0, completed: 0, stepsMatched: 0, bytesReceived: 0, bytesSent: 0, faultsInjected: 0 }
  const failures: Array<ReplayFailure> = []
  const open = new Map<number, Open>()
  const seen = new Set<number>()
  // Sockets still open: their bytes so far count in an outcome taken before they close.
  const live = new Set<Net.Socket>()
  const finished = yield* Deferred.make<void>()
  const failed = yield* Deferred.make<void>()
  let accepting = true

  const outcome = (): Outcome => {
    const summary = { ...counters }
    for (const socket of live) {
      summary.bytesReceived += socket.bytesRead
      summary.bytesSent += socket.bytesWritten
    }
    return { summary, failures: [...failures] }
  }
  const settle = Effect.suspend(() =>
    failures.length > 0
      ? Effect.andThen(Deferred.succeed(failed, undefined), Deferred.succeed(finished, undefined))
      : expected !== undefined && counters.completed >= expected
        ? Deferred.succeed(finished, undefined)
        : Effect.void
  )
  /** Counts a socket's bytes once, when it is done (or when the run's scope ends it). */
  const track = (socket: Net.Socket) =>
    Effect.acquireRelease(
      Effect.sync(() => live.add(socket)),
      () =>
        Effect.sync(() => {
          if (!live.delete(socket)) return
          counters.bytesReceived += socket.bytesRead
          counters.bytesSent += socket.bytesWritten
        })
    )

  const run = (conn: Tcp.Connection, index: number, steps: ReadonlyArray<Step>, state: Open) =>
    Effect.gen(function* () {
      const input = Input.make(conn, index, timeoutMs, now)
      const actionState = makeConnectionState()
      const lost = (reason: string) =>
        new ScriptNotExhausted({
          connection: index,
          step: state.position.step,
          offset: 0,
          remainingSteps: state.position.remaining,
          reason: `the connection was lost (${reason})`
        })
      let ordinal = 0
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i]!
        const at: Input.Position = { step: step.path, remaining: steps.length - i, deadline: now() + timeoutMs }
        state.position.step = step.path
        state.position.remaining = at.remaining
        if (step._tag === "Exchange") {
          yield* input.expect(step.command, at)
          counters.stepsMatched++
          ordinal++
          const fault = Fault.forStep(step.fault, rules, ordinal)
          if (fault !== undefined) counters.faultsInjected++
          const ended = yield* respond(conn, step.response, fault).pipe(
            Effect.mapError((e) =>
              e._tag === "BlobCorrupt"
                ? new ResponseUnreadable({ connection: index, step: step.path, reason: e.message })
                : lost(e.reason)
            )
          )
          if (ended) return
        } else if (step._tag === "Sleep") {
          yield* Effect.sleep(step.duration)
        } else {
          yield* step.prepared.run(actionIO(conn, input, index, step, at, lost), actionState)
        }
      }
      state.position.step = "(end of script)"
      state.position.remaining = 0
      yield* beyondTheEnd(conn, index, timeoutMs)
    })

  const actionIO = (
    conn: Tcp.Connection,
    input: Input.Input,
    index: number,
    step: Extract<Step, { _tag: "Action" }>,
    at: Input.Position,
    lost: (reason: string) => ScriptNotExhausted
  ): ActionIO => ({
    connection: index,
    step: step.path,
    expect: (bytes) => input.expect(typeof bytes === "string" ? Buffer.from(bytes) : bytes, at),
    readLine: input.readLine(at),
    readBytes: (n) => input.readBytes(n, at),
    write: (bytes) =>
      conn.write(typeof bytes === "string" ? Buffer.from(bytes) : bytes).pipe(
        Effect.mapError((e) => lost(e.reason)),
        // The server spoke: the client's turn, and its deadline, start again.
        Effect.tap(() => Effect.sync(() => (at.deadline = now() + timeoutMs)))
      ),
    fail: (reason) => Effect.fail(new ActionFailed({ connection: index, step: step.path, action: step.action, reason }))
  })

  const handle = (socket: Net.Socket, index: number) =>
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* Tcp.connection(socket, { writeStallMs: timeoutMs })
        if (!accepting) return
        yield* track(socket)
        counters.connections++
        const steps = plan._tag === "Single" ? plan.steps : plan.connections[index]
        if (steps === undefined) {
          failures.push(
            new UnexpectedConnection({
              connection: index,
              expected: plan._tag === "Multi" ? plan.connections.length : 0
            })
          )
          yield* settle
          return
        }
        seen.add(index)
        const state: Open = {
          position: { step: steps[0]?.path ?? "(empty script)", remaining: steps.length },
          closed: yield* Deferred.make<void>()
        }
        open.set(index, state)
        const exit = yield* Effect.exit(run(conn, index, steps, state))
        open.delete(index)
        yield* Deferred.succeed(state.closed, undefined)
        if (Exit.isFailure(exit)) {
          const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
          if (failure !== undefined && failure._tag === "Fail") failures.push(failure.error)
          yield* conn.reset
        } else {
          counters.completed++
          yield* conn.awaitClose(1000)
        }
        yield* settle
      })
    )

  const listener = yield* Tcp.listen(options.host ?? "127.0.0.1", options.port ?? 0, handle)
  if (options.announce !== false) yield* Console.log(`Test server listening on ${listener.host}:${listener.port}`)

  /** Connections the script expects that no client opened. */
  const unopened = (): ReadonlyArray<ReplayFailure> => {
    if (options.optionalConnections === true) return []
    if (plan._tag === "Multi")
      return plan.connections.flatMap((steps, k) => (seen.has(k) ? [] : [neverOpened(k, steps)]))
    if (plan.steps.length === 0) return []
    const wanted = options.connections ?? 1
    const missing: Array<ReplayFailure> = []
    for (let k = seen.size; k < wanted; k++) missing.push(neverOpened(k, plan.steps))
    return missing
  }

  const finish = (grace: Duration.Input) =>
    Effect.gen(function* () {
      accepting = false
      yield* Effect.forEach([...open.values()], (o) => Deferred.await(o.closed), { discard: true }).pipe(
        Effect.timeoutOption(grace)
      )
      for (const [index, o] of open) {
        failures.push(
          new ScriptNotExhausted({
            connection: index,
            step: o.position.step,
            offset: 0,
            remainingSteps: o.position.remaining,
            reason: "the run ended"
          })
        )
      }
      failures.push(...unopened())
      return outcome()
    })

  return {
    host: listener.host,
    port: listener.port,
    done: Effect.map(Deferred.await(finished), outcome),
    failed: Deferred.await(failed),
    finish
  } satisfies RunningServer
})

/** Bytes the client sent beyond the script are a divergence too; its own close after ours is not. */
const beyondTheEnd = (conn: Tcp.Connection, index: number, timeoutMs: number) =>
  Effect.gen(function* () {
    yield* conn.end
    const extra = yield* conn.read.pipe(
      Effect.timeoutOption(Math.min(timeoutMs, 1000)),
      Effect.map(Option.flatten),
      Effect.orElseSucceed(() => Option.none<Uint8Array>())
    )
    const received = Buffer.concat([Option.getOrElse(extra, () => new Uint8Array(0)), conn.buffered()])
    if (received.length > 0) {
      return yield* new ScriptMismatch({
        connection: index,
        step: "(end of script)",
        offset: 0,
        expected: new Uint8Array(0),
        received
      })
    }
  })
