// Waiting until a node is ready: each condition is probed every 250 ms until it holds or its timeout passes;
// a container that has exited fails at once instead of waiting out the timeout.
import { Duration, Effect, Schedule } from "effect"
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

const probe = Effect.fn("Readiness.probe")(function* (
  docker: Docker["Service"],
  id: string,
  address: string | undefined,
  condition: Readiness
) {
  const mapEngine = Effect.mapError((e: { readonly message: string }) => notYet(e.message))
  const state = yield* docker.health(id).pipe(mapEngine)
  if (!state.State.Running)
    return yield* Effect.fail(notYet(`container exited with code ${state.State.ExitCode}`, true))
  if ("healthy" in condition) {
    const status = state.State.Health?.Status ?? "no healthcheck"
    if (status !== "healthy") return yield* Effect.fail(notYet(`health is ${status}`))
  } else if ("log" in condition) {
    const logs = yield* docker.logs(id).pipe(mapEngine)
    if (!logs.includes(condition.log)) return yield* Effect.fail(notYet("log line not seen yet"))
  } else if ("command" in condition) {
    const code = yield* docker
      .exec(id, { cmd: condition.command }, { stdout: () => undefined, stderr: () => undefined })
      .pipe(mapEngine)
    if (code !== 0) return yield* Effect.fail(notYet(`exit code ${code}`))
  } else {
    if (address === undefined) return yield* Effect.fail(notYet("node has no address", true))
    yield* tcpOpen(address, condition.tcp)
  }
})

export const waitReady = (
  docker: Docker["Service"],
  node: string,
  id: string,
  address: string | undefined,
  conditions: ReadonlyArray<Readiness>
): Effect.Effect<void, NodeNotReady> =>
  Effect.forEach(
    conditions,
    (condition) => {
      const timeout = condition.timeout ?? Duration.seconds(30)
      let last = "not probed yet"
      const notReady = (reason: string) =>
        new NodeNotReady({
          node,
          condition: describe(condition),
          timeoutMs: Duration.toMillis(timeout),
          lastReason: reason
        })
      return probe(docker, id, address, condition).pipe(
        Effect.tapError((e) =>
          Effect.sync(() => {
            last = e.reason
          })
        ),
        Effect.retry({ schedule: Schedule.spaced("250 millis"), while: (e) => !e.fatal }),
        Effect.mapError((e) => notReady(e.reason)),
        Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail(notReady(last)) })
      )
    },
    { concurrency: "unbounded", discard: true }
  )
