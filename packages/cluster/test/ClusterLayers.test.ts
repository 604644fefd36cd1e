// The cluster's storage against a real, throwaway Postgres that answers but refuses Effect's tables: whichever of
// the two storages (messages, runners and locks) fails to create its tables, the coordinator's and the runner's
// layers fail with `ClusterUnavailable` (exit 3, one line), not a defect (a crash with a stack trace). A migration
// history table of another shape stands in for any database error at start (a role without DDL rights, a table
// of another program): the storages' migrations die on it, as they do on a database they cannot reach.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as ClusterLayers from "../src/ClusterLayers.ts"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"

const testLayer = Layer.provideMerge(
  Layer.unwrap(Effect.map(Postgres, ({ url }) => ClusterLayers.postgres(Redacted.make(url)))),
  Layer.merge(Postgres.layer, NodeServices.layer)
)

/** How building `cluster` ended: the typed error's tag and message, or the cause when it is not one. */
const buildFailure = <A, E>(cluster: Layer.Layer<A, E>) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Effect.scoped(Layer.build(cluster)))
    assert.isTrue(Exit.isFailure(exit), "the layer was built")
    if (Exit.isSuccess(exit)) return { tag: "built", message: "" }
    const failure = exit.cause.reasons.find(Cause.isFailReason)
    assert.isDefined(failure, `not a typed failure: ${Cause.pretty(exit.cause)}`)
    const error = failure?.error as { readonly _tag: string; readonly message: string }
    return { tag: error._tag, message: error.message }
  })

/** A migration history table Effect's migrator cannot read (no `migration_id` column); dropped afterwards. */
const unreadableHistory = (table: string) =>
  Effect.acquireRelease(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      // The other storage's history, from the test before, stays: only its own refuses.
      Effect.andThen(sql`DROP TABLE IF EXISTS ${sql(table)}`, sql`CREATE TABLE ${sql(table)} (x int)`)
    ),
    () => Effect.orDie(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TABLE ${sql(table)}`))
  )

const config = (runner?: { readonly host: string; readonly port: number }) =>
  ClusterLayers.shardingConfig({
    ...(runner === undefined ? {} : { runner }),
    groups: ["default"],
    slots: 1,
    timing: { lockExpiry: Duration.seconds(15) }
  })

describe.skipIf(skipWithoutPostgres)("the cluster's storage on a database that refuses its tables", () => {
  layer(testLayer, { timeout: "120 seconds", excludeTestServices: true })((it) => {
    for (const [storage, table] of [
      ["runner", "testbed_cluster_runner_migrations"],
      ["message", "testbed_cluster_migrations"]
    ] as const) {
      it.effect(`the ${storage} storage's refusal is ClusterUnavailable, for a coordinator and a runner`, () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          yield* unreadableHistory(table)
          const coordinator = yield* buildFailure(ClusterLayers.coordinator(Redacted.make(url), config()))
          assert.strictEqual(coordinator.tag, "ClusterUnavailable", coordinator.message)
          assert.match(coordinator.message, /^cluster database: PgConnection: Query failed \(.*migration_id.*\)$/)
          const port = yield* freePort
          const runner = yield* buildFailure(
            ClusterLayers.runner(Redacted.make(url), config({ host: "127.0.0.1", port }))
          )
          assert.strictEqual(runner.tag, "ClusterUnavailable", runner.message)
          assert.match(runner.message, /^cluster database: PgConnection: Query failed \(.*migration_id.*\)$/)
        })
      )
    }
  })
})
