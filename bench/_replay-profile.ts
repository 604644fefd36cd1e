// Profiles replayed round trips: a ReplayServer in this process serves ROUNDTRIPS plain exchanges to the node load
// client (a child process); run it under --cpu-prof and read the profile with bench/_profile-summary.ts:
//   node_modules/.bin/node --cpu-prof --cpu-prof-dir=/tmp/replay-prof bench/_replay-profile.ts [roundTrips=100000] [replay|echo]
//   node_modules/.bin/node bench/_profile-summary.ts /tmp/replay-prof/*.cpuprofile
import { NodeServices } from "@effect/platform-node"
import { Duration, Effect } from "effect"
import type { Plan } from "../packages/replay/src/Plan.ts"
import * as ReplayServer from "../packages/replay/src/ReplayServer.ts"
import * as Peers from "./_replay-bench.ts"
import { message } from "./_replay-peers.ts"

const roundTrips = Number(process.argv[2] ?? 100_000)
/** `echo`: profile a plain echo server instead, for comparison. */
const subject = process.argv[3] ?? "replay"

const plan: Plan = {
  _tag: "Single",
  steps: Array.from({ length: roundTrips }, (_, i) => ({
    _tag: "Exchange" as const,
    path: `recorded_script.scripts[${i}]`,
    command: message(i),
    response: message(i),
    fault: undefined
  }))
}

const echo = Effect.gen(function* () {
  const port = yield* Peers.echoServer
  const figures = yield* Peers.withCpu(Peers.nodePingPong(port, roundTrips))
  console.log(
    `${roundTrips} round trips to a plain echo server: ${figures.perSecond.toFixed(0)}/s, p50 ${figures.p50.toFixed(1)} µs, ` +
      `p99 ${figures.p99.toFixed(1)} µs, ${((figures.cpuSeconds * 1e6) / roundTrips).toFixed(1)} µs CPU each`
  )
})

const main = Effect.gen(function* () {
  if (subject === "echo") return yield* echo
  const server = yield* ReplayServer.serve(plan, { announce: false, connections: 1, stepTimeout: Duration.seconds(30) })
  const figures = yield* Peers.withCpu(Peers.nodePingPong(server.port, roundTrips))
  const outcome = yield* server.done
  console.log(
    `${roundTrips} replayed round trips: ${figures.perSecond.toFixed(0)}/s, p50 ${figures.p50.toFixed(1)} µs, ` +
      `p99 ${figures.p99.toFixed(1)} µs, ${((figures.cpuSeconds * 1e6) / roundTrips).toFixed(1)} µs CPU each`
  )
  console.log(
    ReplayServer.formatSummary(outcome.summary),
    outcome.failures.length === 0 ? "" : outcome.failures[0]!.message
  )
})

Effect.runPromise(Effect.scoped(main).pipe(Effect.provide(NodeServices.layer))).then(() => process.exit(0))
