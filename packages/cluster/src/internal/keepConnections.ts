/**
 * Keeps a pool's `minConnections` open. The pool (effect's `Pool` under `@effect/sql-pg`) opens them at start, and
 * again when one dies, but a connection that fails to open (a connect timeout at load ~9, Postgres restarting or
 * full) leaves a failed slot that counts as open: the pool replaces it only once every open connection is in use,
 * and an idle runner stayed one or more connections short for good (its next attempts waited for new backends).
 * Every `interval` this counts the process's backends in `pg_stat_activity` (by its application name) and, when
 * they are fewer than `minimum`, borrows `minimum` connections at once: the borrowers that find no open connection
 * take the failed slots, which the pool then replaces. Nothing is borrowed when the count is right, so a busy
 * runner's pool does not grow for it. Best effort: a look or top-up that fails (Postgres away) waits for the next.
 */
import { Duration, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"

export interface Options {
  /** The pool's `minConnections`. */
  readonly minimum: number
  /** The pool's application name: it must name this process's connections only. */
  readonly applicationName: string
  readonly interval?: Duration.Input | undefined
}

/** How often the count is checked by default: a short outage of a warm connection is harmless. */
export const defaultInterval = Duration.seconds(10)

/**
 * A top-up holds the open connections while it waits, so it waits briefly: the pool opens the replacements in its
 * own fiber, and they join it whether or not the top-up is still there. (Once Postgres accepted connections again
 * after refusing some, one borrower of such a top-up waited forever while the pool had opened its connection.)
 */
const topUpDeadline = Duration.seconds(2)

/** A look that has not answered in this long (Postgres hung) is given up; the next one tries again. */
const lookDeadline = Duration.seconds(30)

const Count = Schema.Struct({ open: Schema.Number })

/** One look, and a top-up when it finds fewer than `minimum`; what it saw (the count before any top-up). */
export const check = Effect.fn("KeepConnections.check")(function* (options: Options) {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql`SELECT count(*)::int AS open FROM pg_stat_activity
    WHERE application_name = ${options.applicationName} AND backend_type = 'client backend'`
  const { open } = yield* Schema.decodeUnknownEffect(Count)(rows[0])
  if (open < options.minimum) {
    yield* Effect.logInfo(`Postgres pool: ${open} of its ${options.minimum} connections open, opening the others`)
    yield* Effect.all(
      Array.from({ length: options.minimum }, () => sql.reserve),
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.scoped, Effect.timeout(topUpDeadline))
  }
  return open
})

/** The keeper, for the life of the layer, on the pool of the `SqlClient` it is given. */
export const layer = (options: Options) =>
  Layer.effectDiscard(
    // The first look after one interval: at start the pool is still opening its connections.
    Effect.forkScoped(
      Effect.ignore(Effect.timeout(check(options), lookDeadline)).pipe(
        Effect.delay(options.interval ?? defaultInterval),
        Effect.forever
      )
    )
  )
