// The `replay` service plugin's process: serves a recorded script with @testbed/replay's ReplayServer on the
// given address, prints "Test server listening on HOST:PORT" once it listens (its readiness), waits for its
// connections, writes the outcome as JSON, and exits 0 when the replay passed, 1 when it failed, 2 when the
// script cannot be loaded. SIGTERM ends it early: unfinished connections then count as failures.
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { ReplayServer } from "@testbed/replay"
import { Console, Effect } from "effect"
import * as Replay from "../src/Replay.ts"

const argv = process.argv.slice(2)
const option = (name: string, fallback?: string): string => {
  const index = argv.indexOf(`--${name}`)
  const value = index >= 0 ? argv[index + 1] : fallback
  if (value === undefined) {
    process.stderr.write(`replay-server: --${name} is required\n`)
    process.exit(2)
  }
  return value
}

const program = Effect.gen(function* () {
  const loaded = yield* Replay.loadScript(option("script"), option("name", "recorded_script"))
  const outcome = yield* Effect.scoped(
    Effect.gen(function* () {
      const server = yield* ReplayServer.serve(loaded.plan, {
        host: option("host", "127.0.0.1"),
        port: Number(option("port", "0")),
        connections: Number(option("connections", "1")),
        stepTimeout: `${Number(option("step-timeout", "10"))} seconds`
      })
      return yield* server.done.pipe(Effect.onInterrupt(() => Effect.asVoid(server.finish(0))))
    })
  )
  const written = Replay.fromServer(outcome)
  yield* Replay.writeOutcome(option("outcome"), written)
  yield* Console.log(ReplayServer.formatSummary(outcome.summary))
  for (const failure of outcome.failures) yield* Console.error(failure.message)
  return written.passed ? 0 : 1
})

program.pipe(
  Effect.catch((error) => Effect.as(Console.error(`replay-server: ${error.message}`), 2)),
  Effect.flatMap((code) => Effect.sync(() => process.exit(code))),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
