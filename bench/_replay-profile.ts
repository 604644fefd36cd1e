// Profiles replayed round trips: a ReplayServer in this process serves ROUNDTRIPS plain exchanges to the node load
// client (a child process); run it under --cpu-prof and read the profile with bench/_profile-summary.ts:
//   node_modules/.bin/node --cpu-prof --cpu-prof-dir=/tmp/replay-prof bench/_replay-profile.ts [roundTrips=100000]
//   node_modules/.bin/node bench/_profile-summary.ts /tmp/replay-prof/*.cpuprofile
import { NodeServices } from "@effect/platform-node"
import { Duration, Effect } from "effect"
import type { Plan } from "../packages/replay/src/Plan.ts"
import * as ReplayServer from "../packages/replay/src/ReplayServer.ts"
import * as Peers from "./_replay-bench.ts"
import { message } from "./_replay-peers.ts"

const roundTrips = Number(process.argv[2] ?? 100_000)

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

const main = Effect.gen(function* () {
  const server = yield* ReplayServer.serve(plan, { announce: false, connections: 1, stepTimeout: Duration.seconds(30) })
  const figures = yield* Peers.nodePingPong(server.port, roundTrips)
  const outcome = yield* server.done
  console.log(`${roundTrips} round trips: ${figures.perSecond.toFixed(0)}/s, p50 ${figures.p50.toFixed(1)} µs`)
  console.log(
    ReplayServer.formatSummary(outcome.summary),
    outcome.failures.length === 0 ? "" : outcome.failures[0]!.message
  )
})

Effect.runPromise(Effect.scoped(main).pipe(Effect.provide(NodeServices.layer))).then(() => process.exit(0))
