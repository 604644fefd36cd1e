/**
 * Serves a loaded script as a deterministic fake server: each connection runs its steps concurrently
 * (compound_multi: the k-th accepted connection runs the k-th sub-script), client bytes are matched raw and
 * the first differing byte fails the connection. Faults misbehave on purpose while answering.
 */
import { Console, Context, Deferred, Duration, Effect, Layer, type Scope } from "effect"
import * as Address from "./Address.ts"
import * as Fault from "./Fault.ts"
import { handler } from "./internal/ServeConnection.ts"
import * as ServeState from "./internal/ServeState.ts"
import * as Tcp from "./internal/Tcp.ts"
import type { Plan } from "./Plan.ts"
import type { ReplayFailure } from "./ReplayError.ts"
import * as ScriptSource from "./ScriptSource.ts"
// A cycle, on purpose: `layerTest` is the scripted server, which serves RunningServers; nothing runs at import time.
import * as ScriptedServer from "./ScriptedServer.ts"

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
  /** Runs once the server listens, in its scope: e.g. a metrics endpoint reading `RunningServer.summary`. */
  readonly onListening?: ((server: RunningServer) => Effect.Effect<void, never, Scope.Scope>) | undefined
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
  /** The counters so far, open connections' bytes included (for live metrics). */
  readonly summary: Effect.Effect<Summary>
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

  /** Scripted clients judged in memory on Effect's clock, nothing listening (ScriptedServer): for unit tests. */
  static readonly layerTest = (script: ScriptedServer.Script, firstPort?: number) =>
    ScriptedServer.layer(script, firstPort)
}

export const serve = Effect.fn("ReplayServer.serve")(function* (plan: Plan, options: ServeOptions = {}) {
  const state = yield* ServeState.make({
    plan,
    timeoutMs: Duration.toMillis(Duration.fromInputUnsafe(options.stepTimeout ?? defaultStepTimeout)),
    rules: options.faults ?? [],
    expected: plan._tag === "Multi" ? plan.connections.length : options.connections,
    wanted: options.connections ?? 1,
    optionalConnections: options.optionalConnections === true
  })
  const listener = yield* Tcp.listen(options.host ?? "127.0.0.1", options.port ?? 0, handler(state))
  if (options.announce !== false) yield* Console.log(`Test server listening on ${listener.host}:${listener.port}`)
  const server: RunningServer = {
    host: listener.host,
    port: listener.port,
    done: Effect.map(Deferred.await(state.finished), () => ServeState.outcome(state)),
    failed: Deferred.await(state.failed),
    finish: (grace) => ServeState.finish(state, grace),
    summary: Effect.sync(() => ServeState.outcome(state).summary)
  }
  if (options.onListening !== undefined) yield* options.onListening(server)
  return server
})

/** Serve options as a command line gives them: an address, a step timeout, fault specs (`--fault`). */
export interface ServeFlags {
  /** `HOST:PORT`, `:PORT`, `PORT` (host 127.0.0.1; port 0: any free port). */
  readonly listen: string
  /** A number is seconds (as the old tools' flags were); else a Duration. */
  readonly stepTimeout?: number | Duration.Duration | undefined
  readonly faults?: ReadonlyArray<string> | undefined
  readonly connections?: number | undefined
  readonly optionalConnections?: boolean | undefined
}

/** Decodes what a command line gave: AddressInvalid or FaultSpecInvalid naming the bad value. */
export const optionsFromFlags = Effect.fn("ReplayServer.optionsFromFlags")(function* (flags: ServeFlags) {
  const address = yield* Address.parse(flags.listen)
  const faults = yield* Effect.forEach(flags.faults ?? [], Fault.parseRule)
  return {
    host: address.host,
    port: address.port,
    faults,
    connections: flags.connections,
    optionalConnections: flags.optionalConnections,
    stepTimeout:
      flags.stepTimeout === undefined
        ? undefined
        : typeof flags.stepTimeout === "number"
          ? Duration.millis(flags.stepTimeout * 1000)
          : flags.stepTimeout
  } satisfies ServeOptions
})

/** Each failure, then the summary line, on stderr. */
export const report = Effect.fn("ReplayServer.report")(function* (outcome: Outcome) {
  for (const failure of outcome.failures) yield* Console.error(`Replay failed: ${failure.message}`)
  yield* Console.error(formatSummary(outcome.summary))
})

/**
 * Serves until the run is done (its expected connections, or its first failure). When interrupted (SIGINT,
 * SIGTERM) the run is finished at once: unfinished connections count as failures, and `interrupted` gets the outcome.
 */
export const serveUntilDone = Effect.fn("ReplayServer.serveUntilDone")(function* (
  plan: Plan,
  options: ServeOptions,
  interrupted: (outcome: Outcome) => Effect.Effect<void> = report
) {
  const server = yield* serve(plan, options)
  return yield* server.done.pipe(Effect.onInterrupt(() => Effect.flatMap(server.finish(0), interrupted)))
}, Effect.scoped)

/** `testbed replay serve`: loads the script, serves it until done, and reports the outcome. */
export const serveFile = Effect.fn("ReplayServer.serveFile")(function* (
  source: ScriptSource.ScriptSource,
  options: ServeOptions
) {
  const loaded = yield* ScriptSource.load(source)
  const outcome = yield* serveUntilDone(loaded.plan, options)
  yield* report(outcome)
  return outcome
})
