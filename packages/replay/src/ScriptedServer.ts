/**
 * A ReplayServer that listens on nothing: each connection's client is scripted (how long it plays on Effect's
 * clock, where it diverges or stalls), and the server judges it against the plan as the real one does — the
 * plan's exchanges counted and their bytes summed, a divergence a ScriptMismatch at its first differing byte, a
 * stall a StepTimedOut after the step timeout, what is still open or never opened at `finish` a ScriptNotExhausted.
 * For unit tests of code that serves replays (experiments' replay step): TestClock decides when anything happens.
 * `ReplayServer.layerTest` is this layer.
 */
import { Console, Deferred, Duration, Effect, Fiber, Layer, type Scope } from "effect"
import type { Plan, Step } from "./Plan.ts"
import { responseSize } from "./Plan.ts"
import { type ReplayFailure, ScriptMismatch, ScriptNotExhausted, StepTimedOut } from "./ReplayError.ts"
import * as ReplayServer from "./ReplayServer.ts"

/** What the client of one connection does. Default: it plays the whole connection at once, as recorded. */
export interface ClientScript {
  /** How long, on the Clock, it takes to reach its end (or its divergence or stall). */
  readonly duration?: Duration.Input | undefined
  /** At the step with this index in its connection's steps, it sends `sends` instead of the recorded command. */
  readonly diverges?: { readonly step: number; readonly sends: string } | undefined
  /** At the step with this index it sends nothing more and keeps the connection open. */
  readonly stallsAt?: number | undefined
}

/**
 * The clients of one served replay, one per connection in order (it sees the plan and the options it was served
 * with: a test can record them). Fewer clients than the replay expects: the rest never connect.
 */
export type Script = (plan: Plan, options: ReplayServer.ServeOptions) => ReadonlyArray<ClientScript>

const encoder = new TextEncoder()
const firstDifference = (expected: Uint8Array, received: Uint8Array): number => {
  let offset = 0
  while (offset < expected.length && offset < received.length && expected[offset] === received[offset]) offset++
  return offset
}

interface Connection {
  readonly steps: ReadonlyArray<Step>
  /** Where the client stops following the script: the divergence, the stall, or the end. */
  readonly stop: number
  readonly closed: Deferred.Deferred<void>
}

/** The steps each connection runs: the k-th list for compound_multi, the one script for each wanted connection. */
const connectionsOf = (plan: Plan, options: ReplayServer.ServeOptions): ReadonlyArray<ReadonlyArray<Step>> =>
  plan._tag === "Multi" ? plan.connections : Array.from({ length: options.connections ?? 1 }, () => plan.steps)

const expectedOf = (step: Step | undefined): Uint8Array => (step?._tag === "Exchange" ? step.command : new Uint8Array())

/** What one served replay holds while its clients play (counters and failures as the real server's ServeState). */
interface State {
  readonly lists: ReadonlyArray<ReadonlyArray<Step>>
  readonly clients: ReadonlyArray<ClientScript>
  readonly options: ReplayServer.ServeOptions
  readonly stepTimeout: Duration.Duration
  readonly counters: { -readonly [K in keyof ReplayServer.Summary]: number }
  readonly failures: Array<ReplayFailure>
  readonly open: Map<number, Connection>
  /** Completes at the first failure. */
  readonly failed: Deferred.Deferred<void>
  /** Completes when every expected connection has ended, or at the first failure. */
  readonly finished: Deferred.Deferred<void>
  settled: number
}

const outcomeOf = (state: State): ReplayServer.Outcome => ({
  summary: { ...state.counters },
  failures: [...state.failures]
})

/** A connection has ended, completed or with its failure. */
const settle = Effect.fn("ScriptedServer.settle")(function* (
  state: State,
  index: number,
  failure: ReplayFailure | undefined
) {
  const connection = state.open.get(index)
  if (connection === undefined) return
  state.open.delete(index)
  state.settled++
  if (failure === undefined) state.counters.completed++
  else state.failures.push(failure)
  yield* Deferred.succeed(connection.closed, undefined)
  if (failure !== undefined) yield* Deferred.succeed(state.failed, undefined)
  if (failure !== undefined || state.settled === state.lists.length) yield* Deferred.succeed(state.finished, undefined)
})

/** One client's connection: the steps before its stop counted, then its divergence, its stall, or its end. */
const play = Effect.fn("ScriptedServer.play")(function* (state: State, index: number, client: ClientScript) {
  const connection = state.open.get(index)!
  yield* Effect.sleep(Duration.fromInputUnsafe(client.duration ?? Duration.zero))
  for (const step of connection.steps.slice(0, connection.stop)) {
    if (step._tag !== "Exchange") continue
    state.counters.stepsMatched++
    state.counters.bytesReceived += step.command.length
    state.counters.bytesSent += responseSize(step.response)
  }
  const at = connection.steps[connection.stop]
  const step = at?.path ?? "(end of script)"
  const expected = expectedOf(at)
  if (client.diverges !== undefined) {
    const received = encoder.encode(client.diverges.sends)
    const offset = firstDifference(expected, received)
    state.counters.bytesReceived += offset
    return yield* settle(state, index, new ScriptMismatch({ connection: index, step, offset, expected, received }))
  }
  if (client.stallsAt !== undefined) {
    yield* Effect.sleep(state.stepTimeout)
    const timeoutMs = Duration.toMillis(state.stepTimeout)
    return yield* settle(state, index, new StepTimedOut({ connection: index, step, timeoutMs, offset: 0, expected }))
  }
  yield* settle(state, index, undefined)
})

/**
 * Ends the run as the real server does: open connections get `grace`, then what is still open, and what the script
 * expects but no client opened (unless optional), is ScriptNotExhausted.
 */
const finish = Effect.fn("ScriptedServer.finish")(function* (
  state: State,
  fibers: ReadonlyArray<Fiber.Fiber<void>>,
  grace: Duration.Input
) {
  yield* Effect.forEach([...state.open.values()], (connection) => Deferred.await(connection.closed), {
    discard: true
  }).pipe(Effect.timeoutOption(grace))
  yield* Effect.forEach(fibers, Fiber.interrupt, { discard: true })
  for (const [index, connection] of state.open) {
    const step = connection.steps[connection.stop]?.path ?? "(end of script)"
    const remainingSteps = connection.steps.length - connection.stop
    state.failures.push(
      new ScriptNotExhausted({ connection: index, step, offset: 0, remainingSteps, reason: "the run ended" })
    )
  }
  state.open.clear()
  if (state.options.optionalConnections !== true) {
    for (const [index, steps] of state.lists.entries()) {
      if (index < state.clients.length) continue
      const step = steps[0]?.path ?? "(empty script)"
      const reason = "the client never opened this connection"
      state.failures.push(
        new ScriptNotExhausted({ connection: index, step, offset: 0, remainingSteps: steps.length, reason })
      )
    }
  }
  return outcomeOf(state)
})

/** Serves `plan` to scripted clients; released (every client's fiber ended) with the scope. */
const serveScripted = Effect.fn("ScriptedServer.serve")(function* (
  plan: Plan,
  options: ReplayServer.ServeOptions,
  clients: ReadonlyArray<ClientScript>,
  port: number
): Effect.fn.Return<ReplayServer.RunningServer, never, Scope.Scope> {
  const state: State = {
    lists: connectionsOf(plan, options),
    clients,
    options,
    stepTimeout: Duration.fromInputUnsafe(options.stepTimeout ?? ReplayServer.defaultStepTimeout),
    counters: { connections: 0, completed: 0, stepsMatched: 0, bytesReceived: 0, bytesSent: 0, faultsInjected: 0 },
    failures: [],
    open: new Map(),
    failed: yield* Deferred.make<void>(),
    finished: yield* Deferred.make<void>(),
    settled: 0
  }
  const fibers: Array<Fiber.Fiber<void>> = []
  for (const [index, client] of clients.slice(0, state.lists.length).entries()) {
    const steps = state.lists[index]!
    const stop = Math.min(client.diverges?.step ?? client.stallsAt ?? steps.length, steps.length)
    state.open.set(index, { steps, stop, closed: yield* Deferred.make<void>() })
    state.counters.connections++
    fibers.push(yield* Effect.forkScoped(play(state, index, client)))
  }
  const host = options.host ?? "127.0.0.1"
  const server: ReplayServer.RunningServer = {
    host,
    port,
    done: Effect.map(Deferred.await(state.finished), () => outcomeOf(state)),
    failed: Deferred.await(state.failed),
    finish: (grace) => finish(state, fibers, grace),
    summary: Effect.sync(() => ({ ...state.counters }))
  }
  if (options.announce !== false) yield* Console.log(`Test server listening on ${host}:${port}`)
  if (options.onListening !== undefined) yield* options.onListening(server)
  return server
})

/** The replay server playing `script`'s clients; ports are numbers handed out in order from `firstPort`. */
export const layer = (script: Script, firstPort = 41000): Layer.Layer<ReplayServer.ReplayServer> =>
  Layer.sync(ReplayServer.ReplayServer, () => {
    let nextPort = firstPort
    return ReplayServer.ReplayServer.of({
      serve: (plan, options = {}) => serveScripted(plan, options, script(plan, options), options.port || nextPort++)
    })
  })
