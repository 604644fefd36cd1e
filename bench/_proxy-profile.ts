// Profiles the record proxy: a RecordProxy in this process records a BULK-MiB download from the upstream bulk
// server (a child process) to the load client (another); run it under --cpu-prof and read it with
// bench/_profile-summary.ts:
//   node_modules/.bin/node --cpu-prof --cpu-prof-dir=/tmp/proxy-prof bench/_proxy-profile.ts [bulkMiB=400]
import { NodeServices } from "@effect/platform-node"
import { Effect, FileSystem } from "effect"
import * as Peers from "./_replay-bench.ts"

const bulkMiB = Number(process.argv[2] ?? 400)

const main = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-proxy-profile-" })
  const servers = yield* Peers.servers
  const direct = yield* Peers.bulk(servers.bulk, bulkMiB * 1024 * 1024)
  const proxied = yield* Peers.throughRecordProxy(dir, servers.bulk, (port) => Peers.bulk(port, bulkMiB * 1024 * 1024))
  const mbps = (b: Peers.Bulk) => (b.bytes / 1024 / 1024 / b.seconds).toFixed(1)
  console.log(
    `${bulkMiB} MiB: direct ${mbps(direct)} MiB/s, through RecordProxy ${mbps(proxied)} MiB/s (${proxied.seconds.toFixed(2)} s)`
  )
})

Effect.runPromise(Effect.scoped(main).pipe(Effect.provide(NodeServices.layer))).then(() => process.exit(0))
