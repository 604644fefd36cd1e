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

/** Serves `plan` to scripted clients; released (every client's fiber ended) with the scope. */
const serveScripted = Effect.fn("ScriptedServer.serve")(function* (
  plan: Plan,
  options: ReplayServer.ServeOptions,
  clients: ReadonlyArray<ClientScript>,
  port: number
): Effect.fn.Return<ReplayServer.RunningServer, never, Scope.Scope> {
  const lists = connectionsOf(plan, options)
  const stepTimeout = Duration.fromInputUnsafe(options.stepTimeout ?? ReplayServer.defaultStepTimeout)
  const counters = { connections: 0, completed: 0, stepsMatched: 0, bytesReceived: 0, bytesSent: 0, faultsInjected: 0 }
  const failures: Array<ReplayFailure> = []
  const open = new Map<number, Connection>()
  const failed = yield* Deferred.make<void>()
  const finished = yield* Deferred.make<void>()
  let settled = 0
  const settle = (index: number, failure: ReplayFailure | undefined) =>
    Effect.gen(function* () {
      const connection = open.get(index)
      if (connection === undefined) return
      open.delete(index)
      settled++
      if (failure === undefined) counters.completed++
      else failures.push(failure)
      yield* Deferred.succeed(connection.closed, undefined)
      if (failure !== undefined) yield* Deferred.succeed(failed, undefined)
      if (failure !== undefined || settled === lists.length) yield* Deferred.succeed(finished, undefined)
    })
  const play = (index: number, client: ClientScript) =>
    Effect.gen(function* () {
      const connection = open.get(index)!
      yield* Effect.sleep(Duration.fromInputUnsafe(client.duration ?? Duration.zero))
      for (const step of connection.steps.slice(0, connection.stop)) {
        if (step._tag !== "Exchange") continue
        counters.stepsMatched++
        counters.bytesReceived += step.command.length
        counters.bytesSent += responseSize(step.response)
      }
      const at = connection.steps[connection.stop]
      const path = at?.path ?? "(end of script)"
      if (client.diverges !== undefined) {
        const expected = expectedOf(at)
        const received = encoder.encode(client.diverges.sends)
        const offset = firstDifference(expected, received)
        counters.bytesReceived += offset
        return yield* settle(index, new ScriptMismatch({ connection: index, step: path, offset, expected, received }))
      }
      if (client.stallsAt !== undefined) {
        yield* Effect.sleep(stepTimeout)
        const timeoutMs = Duration.toMillis(stepTimeout)
        const expected = expectedOf(at)
        return yield* settle(index, new StepTimedOut({ connection: index, step: path, timeoutMs, offset: 0, expected }))
      }
      yield* settle(index, undefined)
    })
  const fibers: Array<Fiber.Fiber<void>> = []
  for (const [index, client] of clients.slice(0, lists.length).entries()) {
    const steps = lists[index]!
    const stop = Math.min(client.diverges?.step ?? client.stallsAt ?? steps.length, steps.length)
    open.set(index, { steps, stop, closed: yield* Deferred.make<void>() })
    counters.connections++
    fibers.push(yield* Effect.forkScoped(play(index, client)))
  }
  const outcome = (): ReplayServer.Outcome => ({ summary: { ...counters }, failures: [...failures] })
  const finish = Effect.fn("ScriptedServer.finish")(function* (grace: Duration.Input) {
    yield* Effect.forEach([...open.values()], (connection) => Deferred.await(connection.closed), {
      discard: true
    }).pipe(Effect.timeoutOption(grace))
    yield* Effect.forEach(fibers, Fiber.interrupt, { discard: true })
    for (const [index, connection] of open) {
      const step = connection.steps[connection.stop]?.path ?? "(end of script)"
      const remainingSteps = connection.steps.length - connection.stop
      failures.push(
        new ScriptNotExhausted({ connection: index, step, offset: 0, remainingSteps, reason: "the run ended" })
      )
    }
    open.clear()
    if (options.optionalConnections !== true) {
      for (const [index, steps] of lists.entries()) {
        if (index < clients.length) continue
        const step = steps[0]?.path ?? "(empty script)"
        const reason = "the client never opened this connection"
        failures.push(
          new ScriptNotExhausted({ connection: index, step, offset: 0, remainingSteps: steps.length, reason })
        )
      }
    }
    return outcome()
  })
  const host = options.host ?? "127.0.0.1"
  const server: ReplayServer.RunningServer = {
    host,
    port,
    done: Effect.map(Deferred.await(finished), outcome),
    failed: Deferred.await(failed),
    finish,
    summary: Effect.sync(() => ({ ...counters }))
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
