// Waiting until a node is ready. The engine's events are the signals: a container that dies fails its node at
// once (instead of waiting out the timeout), and a healthcheck that turns healthy is seen when it happens. Log
// lines, commands and TCP ports have no event: they are probed every 250 ms until they hold or time out.
import { Deferred, Duration, Effect, Schedule, Stream } from "effect"
import { connect } from "node:net"
import type { Docker } from "../Docker.ts"
import type { Readiness } from "../Stage.ts"
import { NodeNotReady } from "../StageError.ts"

interface NotYet {
  readonly reason: string
  readonly fatal: boolean
}

const notYet = (reason: string, fatal = false): NotYet => ({ reason, fatal })

const describe = (condition: Readiness): string =>
  "healthy" in condition
    ? "healthcheck healthy"
    : "log" in condition
      ? `log line ${JSON.stringify(condition.log)}`
      : "command" in condition
        ? `command ${condition.command.join(" ")}`
        : `tcp port ${condition.tcp}`

const tcpOpen = (host: string, port: number) =>
  Effect.callback<void, NotYet>((resume) => {
    const socket = connect({ host, port, timeout: 1000 })
    const done = (result: Effect.Effect<void, NotYet>) => {
      socket.destroy()
      resume(result)
    }
    socket.once("connect", () => done(Effect.void))
    socket.once("timeout", () => done(Effect.fail(notYet(`${host}:${port} did not answer`))))
    socket.once("error", (e) => done(Effect.fail(notYet(`${host}:${port}: ${e.message}`))))
    return Effect.sync(() => socket.destroy())
  })

/** What the node's events have said so far: it died (with its exit code), it became healthy. */
interface Signals {
  readonly died: Deferred.Deferred<never, NotYet>
  readonly healthy: Deferred.Deferred<void>
}

/** Listens to the container's events (until the scope ends), then looks once at where it is now. */
const listen = Effect.fn("Readiness.listen")(function* (docker: Docker["Service"], id: string) {
  const signals: Signals = { died: yield* Deferred.make<never, NotYet>(), healthy: yield* Deferred.make<void>() }
  const died = (code: string) => Deferred.fail(signals.died, notYet(`container exited with code ${code}`, true))
  const events = yield* docker.events({ type: ["container"], container: [id], event: ["die", "health_status"] })
  yield* Effect.forkScoped(
    Stream.runForEach(events, (event) =>
      event.Action === "die"
        ? died(event.Actor.Attributes?.exitCode ?? "?")
        : event.Action.endsWith(": healthy")
          ? Deferred.succeed(signals.healthy, undefined)
          : Effect.void
    )
  )
  // Whatever happened before the events were asked for.
  const state = yield* docker.health(id).pipe(Effect.mapError((e) => notYet(e.message, true)))
  if (!state.State.Running) yield* died(String(state.State.ExitCode))
  if (state.State.Health?.Status === "healthy") yield* Deferred.succeed(signals.healthy, undefined)
  return signals
})

/** One look at a condition that has no event. */
const probe = Effect.fn("Readiness.probe")(function* (
  docker: Docker["Service"],
  id: string,
  address: string | undefined,
  condition: Readiness
) {
  const mapEngine = Effect.mapError((e: { readonly message: string }) => notYet(e.message))
  if ("log" in condition) {
    const logs = yield* docker.logs(id).pipe(mapEngine)
    if (!logs.includes(condition.log)) return yield* Effect.fail(notYet("log line not seen yet"))
  } else if ("command" in condition) {
    const code = yield* docker
      .exec(id, { cmd: condition.command }, { stdout: () => undefined, stderr: () => undefined })
      .pipe(mapEngine)
    if (code !== 0) return yield* Effect.fail(notYet(`exit code ${code}`))
  } else if ("tcp" in condition) {
    if (address === undefined) return yield* Effect.fail(notYet("node has no address", true))
    yield* tcpOpen(address, condition.tcp)
  }
})

/** One condition, until it holds, the node dies, or its timeout (default 30 seconds) passes. */
const awaitCondition = (
  docker: Docker["Service"],
  node: string,
  id: string,
  address: string | undefined,
  signals: Signals,
  condition: Readiness
) => {
  const timeout = condition.timeout ?? Duration.seconds(30)
  let last = "not probed yet"
  const notReady = (reason: string) =>
    new NodeNotReady({
      node,
      condition: describe(condition),
      timeoutMs: Duration.toMillis(timeout),
      lastReason: reason
    })
  const holds =
    "healthy" in condition
      ? Effect.tap(docker.health(id), (s) =>
          Effect.sync(() => (last = `health is ${s.State.Health?.Status ?? "none"}`))
        ).pipe(Effect.ignore, Effect.andThen(Deferred.await(signals.healthy)))
      : probe(docker, id, address, condition).pipe(
          Effect.tapError((e) => Effect.sync(() => (last = e.reason))),
          Effect.retry({ schedule: Schedule.spaced("250 millis"), while: (e) => !e.fatal })
        )
  return Effect.raceFirst(holds, Deferred.await(signals.died)).pipe(
    Effect.mapError((e) => notReady(e.reason)),
    Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail(notReady(last)) })
  )
}

export const waitReady = Effect.fn("Readiness.wait")(function* (
  docker: Docker["Service"],
  node: string,
  id: string,
  address: string | undefined,
  conditions: ReadonlyArray<Readiness>
) {
  if (conditions.length === 0) return
  const signals = yield* listen(docker, id).pipe(
    Effect.mapError((e) => new NodeNotReady({ node, condition: "running", timeoutMs: 0, lastReason: e.reason }))
  )
  yield* Effect.forEach(conditions, (c) => awaitCondition(docker, node, id, address, signals, c), {
    concurrency: "unbounded",
    discard: true
  })
}, Effect.scoped)
