// What the fleet benches (bench/fleet.ts, _fleet-profile.ts, _fleet-ab.ts, _fleet-latency.ts) share.
import { NodeServices } from "@effect/platform-node"
import { Clock, Effect, Layer, References, type Scope } from "effect"
// mqtt is a dependency of @testbed/fleet, not of the repository root.
import { connect } from "../packages/fleet/node_modules/mqtt/build/index.js"
import { CommandRunner } from "../packages/commands/src/CommandRunner.ts"
import { EventBus } from "../packages/events/src/EventBus.ts"

/** Answers at once, in process: what an agent does minus the child process. */
export const inProcess = Layer.succeed(
  CommandRunner,
  CommandRunner.of({
    name: "in-process",
    run: (command) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const at = new Date(now).toISOString()
        return {
          commandId: command.id ?? "",
          exitCode: 0,
          signal: null,
          stdout: "",
          stderr: "",
          startedAt: at,
          endedAt: at,
          durationMs: 0,
          attempts: 1,
          timedOut: false,
          truncated: false
        }
      }),
    stream: () => Effect.die("unused") as never
  })
)

/** The raw baseline's two clients: a responder echoing `raw/req` onto `raw/rep`, and a requester listening there. */
export const rawPair = async (url: string) => {
  const open = (id: string) =>
    new Promise<ReturnType<typeof connect>>((resolve) => {
      const c = connect(url, { clientId: id })
      c.once("connect", () => resolve(c))
    })
  const requester = await open("raw-requester")
  const responder = await open("raw-responder")
  await responder.subscribeAsync("raw/req", { qos: 1 })
  await requester.subscribeAsync("raw/rep", { qos: 1 })
  responder.on("message", (_topic, payload) => {
    responder.publish("raw/rep", payload, { qos: 1 })
  })
  return { requester, responder }
}

/**
 * Runs a fleet bench with what every one needs (its scope, the bus, Node's services, errors-only logs) and exits:
 * 0, or 1 with the failure printed.
 */
export const runFleetBench = <A, E>(
  program: Effect.Effect<A, E, EventBus | NodeServices.NodeServices | Scope.Scope>
): Promise<never> =>
  Effect.runPromise(
    program.pipe(
      Effect.scoped,
      Effect.provide(EventBus.layer),
      Effect.provide(NodeServices.layer),
      Effect.provideService(References.MinimumLogLevel, "Error")
    )
  ).then(
    () => process.exit(0),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
