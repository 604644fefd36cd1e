/**
 * `testbed cluster prune`: what a cluster's database keeps after the fact, removed: runners' rows not refreshed
 * for longer than `runnersGoneFor` (a runner SIGKILLed never removes its own), and runs finished longer ago than
 * `runsOlderThan` with their Effect Cluster messages and replies and every bundle no remaining run uses. One
 * transaction; `dryRun` says what would go and removes nothing. Runs whose coordinator never finished (killed, to
 * be resumed) are kept.
 */
import { Duration, Effect, type Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as ClusterLayers from "./ClusterLayers.ts"
import { ClusterUnavailable } from "./ClusterUnavailable.ts"
import * as BundleStore from "./internal/bundleStore.ts"
import * as RunnerDirectory from "./RunnerDirectory.ts"

export interface Options {
  readonly runnersGoneFor: Duration.Duration
  readonly runsOlderThan: Duration.Duration
  readonly dryRun: boolean
}

export const defaults = { runnersGoneFor: Duration.minutes(10), runsOlderThan: Duration.days(7) }

export const Pruned = Schema.Struct({
  runners: Schema.Array(Schema.Struct({ name: Schema.String, age: Schema.Finite })),
  runs: Schema.Array(Schema.String),
  bundles: Schema.Array(Schema.Struct({ sha256: Schema.String, size: Schema.Finite })),
  messages: Schema.Int,
  replies: Schema.Int
})
export type Pruned = typeof Pruned.Type

const RunnerGone = Schema.Struct({ name: Schema.String, age: Schema.Union([Schema.Number, Schema.String]) })
const RunFinished = Schema.Struct({ run_id: Schema.String })
const BundleUnused = Schema.Struct({ sha256: Schema.String, size: Schema.Union([Schema.Number, Schema.String]) })
const Count = Schema.Struct({ count: Schema.Union([Schema.Number, Schema.String]) })

const decode =
  <S extends Schema.Top>(schema: S, table: string) =>
  (rows: ReadonlyArray<unknown>) =>
    Schema.decodeUnknownEffect(Schema.Array(schema))(rows).pipe(
      Effect.mapError(
        (error) => new ClusterUnavailable({ reason: `${table} holds an unexpected row: ${error.message}` })
      )
    )

/** Runners not heard from for `goneFor`. */
const goneRunners = Effect.fn("Prune.goneRunners")(function* (goneFor: Duration.Duration) {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql`SELECT name, EXTRACT(EPOCH FROM (now() - heartbeat))::float8 AS age FROM testbed_runners
    WHERE heartbeat < now() - make_interval(secs => ${Duration.toSeconds(goneFor)}) ORDER BY name`
  return (yield* decode(RunnerGone, "testbed_runners")(rows)).map((row) => ({ name: row.name, age: Number(row.age) }))
})

/** Runs finished before `olderThan`, and the bundles no other run uses (stored before `olderThan` too). */
const oldRuns = Effect.fn("Prune.oldRuns")(function* (olderThan: Duration.Duration) {
  const sql = yield* SqlClient.SqlClient
  const seconds = Duration.toSeconds(olderThan)
  const runs = (yield* decode(
    RunFinished,
    "testbed_runs"
  )(
    yield* sql`SELECT run_id FROM testbed_runs
      WHERE finished_at IS NOT NULL AND finished_at < now() - make_interval(secs => ${seconds}) ORDER BY run_id`
  )).map((row) => row.run_id)
  const kept = runs.length === 0 ? sql`TRUE` : sql`r.run_id NOT IN ${sql.in(runs)}`
  const bundles = yield* decode(
    BundleUnused,
    "testbed_bundles"
  )(
    yield* sql`SELECT sha256, size::float8 AS size FROM testbed_bundles b
      WHERE b.stored_at < now() - make_interval(secs => ${seconds})
        AND NOT EXISTS (SELECT 1 FROM testbed_runs r WHERE r.bundle = b.sha256 AND ${kept}) ORDER BY sha256`
  )
  return { runs, bundles: bundles.map((row) => ({ sha256: row.sha256, size: Number(row.size) })) }
})

/** How many messages and replies of these runs Effect Cluster keeps (entity ids are `group/runId/…`). */
const messagesOf = Effect.fn("Prune.messagesOf")(function* (runs: ReadonlyArray<string>, remove: boolean) {
  const sql = yield* SqlClient.SqlClient
  const messages = sql(`${ClusterLayers.tablePrefix}_messages`)
  const replies = sql(`${ClusterLayers.tablePrefix}_replies`)
  const present = yield* sql`SELECT to_regclass(${`${ClusterLayers.tablePrefix}_replies`}) IS NOT NULL AS present`
  if (runs.length === 0 || present[0]?.present !== true) return { messages: 0, replies: 0 }
  const ofRuns = sql`split_part(entity_id, '/', 2) IN ${sql.in(runs)}`
  const count = (rows: ReadonlyArray<unknown>) =>
    Effect.map(decode(Count, "a cluster table")(rows), (decoded) => Number(decoded[0]?.count ?? 0))
  const replyCount = yield* count(
    yield* sql`SELECT count(*)::int AS count FROM ${replies} WHERE request_id IN (SELECT id FROM ${messages} WHERE ${ofRuns})`
  )
  const messageCount = yield* count(yield* sql`SELECT count(*)::int AS count FROM ${messages} WHERE ${ofRuns}`)
  if (remove) {
    yield* sql`DELETE FROM ${replies} WHERE request_id IN (SELECT id FROM ${messages} WHERE ${ofRuns})`
    yield* sql`DELETE FROM ${messages} WHERE ${ofRuns}`
  }
  return { messages: messageCount, replies: replyCount }
})

/** Finds (and unless `dryRun`, removes) what is gone, in one transaction. */
export const prune = Effect.fn("Prune.prune")(function* (options: Options) {
  const sql = yield* SqlClient.SqlClient
  yield* RunnerDirectory.migrate()
  yield* BundleStore.migrate()
  const work = Effect.gen(function* () {
    const runners = yield* goneRunners(options.runnersGoneFor)
    const { runs, bundles } = yield* oldRuns(options.runsOlderThan)
    const counted = yield* messagesOf(runs, !options.dryRun)
    if (!options.dryRun) {
      const names = runners.map((runner) => runner.name)
      // Only the rows found: a runner that came back meanwhile has a fresh heartbeat and stays.
      if (names.length > 0) {
        yield* sql`DELETE FROM testbed_runners WHERE name IN ${sql.in(names)}
          AND heartbeat < now() - make_interval(secs => ${Duration.toSeconds(options.runnersGoneFor)})`
      }
      if (runs.length > 0) yield* sql`DELETE FROM testbed_runs WHERE run_id IN ${sql.in(runs)}`
      const shas = bundles.map((bundle) => bundle.sha256)
      if (shas.length > 0) yield* sql`DELETE FROM testbed_bundles WHERE sha256 IN ${sql.in(shas)}`
    }
    return { runners, runs, bundles, ...counted } satisfies Pruned
  })
  return yield* sql.withTransaction(work)
})

/** `prune` on the cluster at `url`; Postgres unreachable or refusing is `ClusterUnavailable` (exit 3). */
export const run = (url: Redacted.Redacted<string>, options: Options) =>
  prune(options).pipe(
    Effect.catchTag("SqlError", (error) => Effect.fail(new ClusterUnavailable({ reason: error.message }))),
    Effect.provide(ClusterLayers.postgres(url))
  )

/** What was (or would be) removed, one line per kind and one per runner, run and bundle. */
export const format = (pruned: Pruned, dryRun: boolean): string => {
  const verb = dryRun ? "would remove" : "removed"
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
  return [
    `${verb} ${pruned.runners.length} runner(s)`,
    ...pruned.runners.map((runner) => `  runner ${runner.name} (last seen ${runner.age.toFixed(0)}s ago)`),
    `${verb} ${pruned.runs.length} finished run(s), ${pruned.messages} message(s), ${pruned.replies} repl${pruned.replies === 1 ? "y" : "ies"}`,
    ...pruned.runs.map((run) => `  run ${run}`),
    `${verb} ${pruned.bundles.length} bundle(s)`,
    ...pruned.bundles.map((bundle) => `  bundle ${bundle.sha256.slice(0, 12)} (${mib(bundle.size)})`)
  ].join("\n")
}
