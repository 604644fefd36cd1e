// A runner's own CPU per attempt, without the cluster engine and Postgres: ATTEMPTS attempts of one test whose only
// service is `exec PROGRAM ARGS` (default `sleep 0.2`) through `AttemptRunner.replies` (checked, on a slot, planned
// once, run on a bus of its own as a local run does, files read, every chunk signed, packed into rows), CONCURRENCY
// at a time, in this process after WARM attempts; prints the process's CPU per attempt (user + system) and the rows.
// Also: the minor page faults per attempt (a fork write-protects every page of this process: the next write to each
// one faults), and the medians of the runner's path (request → first event, → process spawned; the service's exit
// → `Finished`). TIMELINE=1 prints the median time of every event of an attempt; GAP_MS=N pauses after each attempt
// (attempts a second apart cost more CPU than back to back: colder caches, more promoted to the old generation).
// With NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR" the profile is of this loop (bench/_profile-summary.ts).
// Run: node_modules/.bin/node bench/_runner-attempts.ts [attempts=200] [concurrency=4] [warm=20] [PROGRAM ARGS…]
import { createHash, randomBytes } from "node:crypto"
import { NodeServices } from "@effect/platform-node"
import { Clock, Effect, FileSystem, Path, Redacted, Ref, Semaphore, Stream } from "effect"
import * as AttemptProtocol from "../packages/cluster/src/AttemptProtocol.ts"
import * as AttemptRunner from "../packages/cluster/src/AttemptRunner.ts"
import * as BundleCache from "../packages/cluster/src/BundleCache.ts"
import * as ClusterLayers from "../packages/cluster/src/ClusterLayers.ts"
import * as Envelope from "../packages/cluster/src/Envelope.ts"
import * as Plans from "../packages/cluster/src/internal/plans.ts"

const [attemptsText = "200", concurrencyText = "4", warmText = "20", program = "sleep", ...rest] = process.argv.slice(2)
const args = program === "sleep" && rest.length === 0 ? ["0.2"] : rest
const attempts = Number(attemptsText)
const concurrency = Number(concurrencyText)
const warm = Number(warmText)

const experiment = [
  "name: runner-attempts",
  "tests:",
  "  - name: t",
  "    services:",
  `      c: { implementation: exec, role: client, parameters: { program: ${JSON.stringify(program)}, args: ${JSON.stringify(args)} } }`,
  ""
].join("\n")

const program_ = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const workdir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-runner-attempts-" })
  const file = path.join(workdir, "experiment.yaml")
  yield* fs.writeFileString(file, experiment)
  const identity: AttemptRunner.RunnerIdentity = {
    name: "bench",
    host: "bench-host",
    workdir,
    pluginDirectories: [],
    keys: Envelope.keys(Redacted.make("the-bench-cluster-secret")),
    slots: yield* Semaphore.make(concurrency),
    running: yield* Ref.make<ReadonlyMap<string, string>>(new Map()),
    maxArtifactBytes: 1024 * 1024,
    plans: Plans.make(),
    bundles: BundleCache.make({ workdir })
  }
  const runId = `bench-${randomBytes(6).toString("hex")}`
  let rows = 0
  let chunks = 0
  const timeline: Record<string, Array<number>> = {}
  // Per attempt, ms: request → its first event, request → its process spawned, the service's exit → `Finished` sent.
  const paths = {
    firstEvent: [] as Array<number>,
    spawned: [] as Array<number>,
    exitToFinished: [] as Array<number>,
    testFinishedToFinished: [] as Array<number>
  }
  const one = (attempt: number) =>
    Effect.gen(function* () {
      const entityId = `default/${runId}/t/${attempt}/0#0`
      const unsigned = {
        runId,
        testKey: "t",
        test: "t",
        attempt,
        dispatch: 0,
        file,
        fileSha256: createHash("sha256").update(experiment).digest("hex"),
        pluginDirectories: [],
        timeoutMs: 60_000,
        timeoutMessage: "too long",
        notAfter: (yield* Clock.currentTimeMillis) + 60_000,
        protocol: AttemptProtocol.protocolVersion
      }
      const request = {
        ...unsigned,
        mac: Envelope.sign(identity.keys.request, AttemptProtocol.requestParts(entityId, unsigned))
      }
      const began = Date.now()
      const at: Record<string, number> = {}
      yield* AttemptRunner.replies(identity, entityId, request, Effect.succeed(false)).pipe(
        Stream.runForEachArray((row) =>
          Effect.sync(() => {
            rows++
            chunks += row.length
            for (const chunk of row) {
              if (chunk._tag === "Finished") at.finished = Date.now()
              if (chunk._tag !== "Events" && chunk._tag !== "Finished") continue
              for (const line of chunk.lines) {
                const event = JSON.parse(line) as {
                  type: string
                  timestamp: string
                  entityId: string
                  data: { to?: string }
                }
                if (process.env.TIMELINE !== undefined && attempt > warm) {
                  const key = `${event.type} ${event.entityId.split("/")[1] ?? ""} ${event.data.to ?? ""}`
                  timeline[key] = [...(timeline[key] ?? []), Date.parse(event.timestamp) - began]
                }
                const time = Date.parse(event.timestamp)
                if (event.type === "test.started") at.first = time
                if (event.type === "service.started") at.spawned = time
                if (event.type === "service.exited") at.exited = time
                if (event.type === "test.finished") at.testFinished = time
              }
            }
          })
        )
      )
      // GAP_MS: an idle pause after each attempt (is the cost of a long attempt its service's life, or the pause?).
      if (process.env.GAP_MS !== undefined) yield* Effect.sleep(Number(process.env.GAP_MS))
      if (attempt > warm) {
        paths.firstEvent.push(at.first! - began)
        paths.spawned.push(at.spawned! - began)
        paths.exitToFinished.push(at.finished! - at.exited!)
        paths.testFinishedToFinished.push(at.finished! - at.testFinished!)
      }
    })
  const batch = (from: number, count: number) =>
    Effect.forEach(
      Array.from({ length: count }, (_, i) => from + i),
      one,
      { concurrency, discard: true }
    )
  yield* batch(1, warm)
  rows = 0
  chunks = 0
  const cpu = process.cpuUsage()
  const faults = process.resourceUsage().minorPageFault
  const began = yield* Clock.currentTimeMillis
  yield* batch(warm + 1, attempts)
  const used = process.cpuUsage(cpu)
  const faulted = process.resourceUsage().minorPageFault - faults
  const wall = (yield* Clock.currentTimeMillis) - began
  const median = (values: Array<number>) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]
  if (process.env.TIMELINE !== undefined) {
    for (const [key, times] of Object.entries(timeline)) console.log(`${median(times)} ms  ${key}`)
  }
  console.log(
    `on the runner's path (median ms): request → first event ${median(paths.firstEvent)}, → process spawned ${median(paths.spawned)}; service exit → Finished ${median(paths.exitToFinished)} (its test.finished → Finished ${median(paths.testFinishedToFinished)})`
  )
  console.log(
    `${attempts} attempts of ${program} ${args.join(" ")}, ${concurrency} at a time: ${((used.user + used.system) / 1000 / attempts).toFixed(2)} ms CPU per attempt (user ${(used.user / 1000 / attempts).toFixed(2)}, system ${(used.system / 1000 / attempts).toFixed(2)}), ${(wall / attempts).toFixed(1)} ms wall per attempt, ${(rows / attempts).toFixed(2)} rows and ${(chunks / attempts).toFixed(2)} chunks per attempt, ${(faulted / attempts).toFixed(0)} page faults per attempt (this process)`
  )
})

Effect.runPromise(
  program_.pipe(
    Effect.scoped,
    Effect.provide([
      NodeServices.layer,
      // No bundle in these requests: the client never connects.
      ClusterLayers.postgres(Redacted.make("postgres://nobody@127.0.0.1:1/none"))
    ])
  )
).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
