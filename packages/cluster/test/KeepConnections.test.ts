// A pool whose connections failed to open gets back to its minimum (internal/keepConnections.ts), against a real
// Postgres: a role limited to 4 connections makes a pool of minimum 6 fail to open two; once the limit is lifted
// the keeper brings the pool to 6 (without it, the idle pool stayed at 4), and no further.
import { execFileSync } from "node:child_process"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Redacted, Schedule } from "effect"
import { postgres } from "../src/ClusterLayers.ts"
import * as KeepConnections from "../src/internal/keepConnections.ts"
import { Postgres, skipWithoutPostgres } from "./postgres.ts"

const minimum = 6
const applicationName = "keep connections test"

/** The pool's backends, as Postgres sees them. */
const open = (url: string) =>
  Effect.sync(() =>
    Number(
      execFileSync(
        "psql",
        [url, "-tA", "-c", `SELECT count(*) FROM pg_stat_activity WHERE application_name = '${applicationName}'`],
        { encoding: "utf8" }
      ).trim()
    )
  )

/** The count once it is `expected`, or the last count seen after 30 s. */
const settlesAt = (url: string, expected: number) =>
  open(url).pipe(
    Effect.filterOrFail(
      (count) => count === expected,
      (count) => count
    ),
    Effect.retry({ schedule: Schedule.spaced("250 millis"), times: 120 }),
    Effect.catch((count) => Effect.succeed(count))
  )

describe.skipIf(skipWithoutPostgres)("KeepConnections", () => {
  layer(Postgres.layer, { excludeTestServices: true })((it) => {
    it.effect(
      "a pool that failed to open some of its minimum opens them once Postgres lets it",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          execFileSync("psql", [url, "-q", "-c", "CREATE ROLE limited LOGIN CONNECTION LIMIT 4"])
          const limited = url.replace("://postgres@", "://limited@")
          yield* Layer.build(
            KeepConnections.layer({ minimum, applicationName, interval: "1 second" }).pipe(
              Layer.provideMerge(postgres(Redacted.make(limited), { minConnections: minimum, applicationName }))
            )
          )
          assert.strictEqual(yield* settlesAt(url, 4), 4, "the role's limit holds the pool at 4")
          execFileSync("psql", [url, "-q", "-c", "ALTER ROLE limited CONNECTION LIMIT -1"])
          assert.strictEqual(yield* settlesAt(url, minimum), minimum, "the pool is back to its minimum")
          // And stays there: the keeper borrows nothing when the count is right, so the pool does not grow.
          yield* Effect.sleep("3 seconds")
          assert.strictEqual(yield* open(url), minimum)
        }).pipe(Effect.scoped),
      90_000
    )
  })
})
