/**
 * `testbed_runners`: one row per runner, refreshed every second: its labels, profile group, slots, busy slots and
 * the shards it owns now. Coordinators read it to find the runners that can run a test (or to report the test
 * unschedulable at once, since a request to a group nobody serves would wait forever), to place an attempt on
 * the runner with the most free slots, and for `testbed cluster status`.
 */
import { Duration, Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { ClusterUnavailable } from "./ClusterUnavailable.ts"

export const RunnerRow = Schema.Struct({
  name: Schema.String,
  host: Schema.String,
  address: Schema.String,
  labels: Schema.Array(Schema.String),
  group: Schema.String,
  slots: Schema.Int,
  busy: Schema.Int,
  running: Schema.Array(Schema.String),
  shards: Schema.Array(Schema.String),
  /** Seconds since its last heartbeat. */
  age: Schema.Finite
})
export type RunnerRow = typeof RunnerRow.Type

const StoredRow = Schema.Struct({
  name: Schema.String,
  host: Schema.String,
  address: Schema.String,
  labels: Schema.String,
  profile_group: Schema.String,
  slots: Schema.Number,
  busy: Schema.Number,
  running: Schema.String,
  shards: Schema.String,
  age: Schema.Union([Schema.Number, Schema.String])
})

const split = (text: string) => (text === "" ? [] : text.split("\n"))

export const migrate = Effect.fn("RunnerDirectory.migrate")(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS testbed_runners (
    name text PRIMARY KEY,
    host text NOT NULL,
    address text NOT NULL,
    labels text NOT NULL,
    profile_group text NOT NULL,
    slots int NOT NULL,
    busy int NOT NULL,
    running text NOT NULL,
    shards text NOT NULL,
    heartbeat timestamptz NOT NULL
  )`
})

/** Writes this runner's row (`running`: the tests it runs now). */
export const publish = Effect.fn("RunnerDirectory.publish")(function* (row: Omit<RunnerRow, "age">) {
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO testbed_runners (name, host, address, labels, profile_group, slots, busy, running, shards, heartbeat)
    VALUES (${row.name}, ${row.host}, ${row.address}, ${row.labels.join("\n")}, ${row.group}, ${row.slots},
      ${row.busy}, ${row.running.join("\n")}, ${row.shards.join("\n")}, now())
    ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, address = EXCLUDED.address, labels = EXCLUDED.labels,
      profile_group = EXCLUDED.profile_group, slots = EXCLUDED.slots, busy = EXCLUDED.busy,
      running = EXCLUDED.running, shards = EXCLUDED.shards, heartbeat = now()`
})

/** Removes this runner's row (a graceful stop). */
export const remove = Effect.fn("RunnerDirectory.remove")(function* (name: string) {
  const sql = yield* SqlClient.SqlClient
  yield* sql`DELETE FROM testbed_runners WHERE name = ${name}`
})

/**
 * Every runner's row; `live` only those heard from within `within` (the lock expiry). The table must exist
 * (`migrate`, once per process: a coordinator lists the runners at every dispatch and every group watch).
 */
export const list = Effect.fn("RunnerDirectory.list")(function* (within?: Duration.Duration) {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql`SELECT name, host, address, labels, profile_group, slots, busy, running, shards,
      EXTRACT(EPOCH FROM (now() - heartbeat))::float8 AS age FROM testbed_runners ORDER BY name`
  const decoded = yield* Schema.decodeUnknownEffect(Schema.Array(StoredRow))(rows).pipe(
    Effect.mapError(
      (error) =>
        new ClusterUnavailable({ reason: `testbed_runners holds a row that is not a runner's: ${error.message}` })
    )
  )
  return decoded
    .map(
      (row): RunnerRow => ({
        name: row.name,
        host: row.host,
        address: row.address,
        labels: split(row.labels),
        group: row.profile_group,
        slots: row.slots,
        busy: row.busy,
        running: split(row.running),
        shards: split(row.shards),
        age: Number(row.age)
      })
    )
    .filter((row) => within === undefined || row.age <= Duration.toSeconds(within))
})
