/**
 * Bundles in Postgres, content-addressed: `testbed_bundles` (one row per sha256: size, piece count) and
 * `testbed_bundle_pieces` (the bytes, at most `pieceBytes` a row, so no query moves a whole bundle), written once
 * and in one transaction: a bundle row exists only with all its pieces. `testbed_runs` says which run uses which
 * bundle and when it finished (what `testbed cluster prune` goes by).
 */
import { Duration, Effect, Schema } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import * as Bundle from "../Bundle.ts"
import * as OutageTolerant from "./outageTolerant.ts"

/** Bytes of one stored piece. */
export const pieceBytes = 512 * 1024

export const migrate = Effect.fn("bundleStore.migrate")(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS testbed_bundles (
    sha256 text PRIMARY KEY,
    size bigint NOT NULL,
    pieces int NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS testbed_bundle_pieces (
    sha256 text NOT NULL REFERENCES testbed_bundles (sha256) ON DELETE CASCADE,
    piece int NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (sha256, piece)
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS testbed_runs (
    run_id text PRIMARY KEY,
    bundle text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
  )`
})

/** Stores the bundle unless it is there already, and records that `runId` uses it (again, on `--resume`). */
export const put = Effect.fn("bundleStore.put")(function* (runId: string, sha256: string, bytes: Uint8Array) {
  const sql = yield* SqlClient.SqlClient
  yield* migrate()
  const pieces = Math.ceil(bytes.length / pieceBytes)
  const store = Effect.gen(function* () {
    const inserted = yield* sql`INSERT INTO testbed_bundles (sha256, size, pieces)
      VALUES (${sha256}, ${bytes.length}, ${pieces}) ON CONFLICT (sha256) DO NOTHING RETURNING sha256`
    // In the same transaction: `prune` never sees the bundle without the run that uses it.
    yield* sql`INSERT INTO testbed_runs (run_id, bundle) VALUES (${runId}, ${sha256})
      ON CONFLICT (run_id) DO UPDATE SET bundle = EXCLUDED.bundle, finished_at = NULL`
    if (inserted.length === 0) return
    for (let piece = 0; piece < pieces; piece++) {
      const start = piece * pieceBytes
      const slice = Buffer.from(bytes.buffer, bytes.byteOffset + start, Math.min(pieceBytes, bytes.length - start))
      yield* sql`INSERT INTO testbed_bundle_pieces (sha256, piece, bytes) VALUES (${sha256}, ${piece}, ${slice})`
    }
  })
  yield* sql.withTransaction(store)
})

/** Marks the run finished (its coordinator stopped): from now on `prune` counts its age. */
export const finished = Effect.fn("bundleStore.finished")(function* (runId: string) {
  const sql = yield* SqlClient.SqlClient
  yield* sql`UPDATE testbed_runs SET finished_at = now() WHERE run_id = ${runId}`
})

const Stored = Schema.Struct({ size: Schema.Union([Schema.Number, Schema.String]), pieces: Schema.Number })

/**
 * One query of a fetch, tried again through a Postgres outage (a restart, a failover) as the cluster's own storage
 * is: with backoff while it fails with `SqlError`, for at most `budget` (the lock expiry) in all, a query that hangs
 * on a connection to a Postgres that is away included. Past that the fetch gives up, naming the bundle.
 */
const outageTolerant =
  (sha256: string, budget: Duration.Duration) =>
  <A, R>(query: Effect.Effect<A, SqlError.SqlError, R>) => {
    const unreachable = (reason: string) =>
      new Bundle.BundleUnreachable({ sha256, waitedMs: Duration.toMillis(budget), reason })
    return query.pipe(
      OutageTolerant.retryingSql(budget),
      Effect.mapError((error) => unreachable(error.message)),
      Effect.timeoutOrElse({ duration: budget, orElse: () => Effect.fail(unreachable("no answer")) })
    )
  }

/**
 * The bundle's bytes, piece by piece, refused past `maxBytes` before any piece is read. A Postgres outage shorter
 * than `outageBudget` only delays it (each query resumes where the outage cut it: the pieces read are kept).
 */
export const get = Effect.fn("bundleStore.get")(function* (
  sha256: string,
  maxBytes: number,
  outageBudget: Duration.Duration
) {
  const sql = yield* SqlClient.SqlClient
  const reach = outageTolerant(sha256, outageBudget)
  const corrupt = (reason: string) => new Bundle.BundleCorrupt({ sha256, reason })
  const rows = yield* reach(sql`SELECT size::float8 AS size, pieces FROM testbed_bundles WHERE sha256 = ${sha256}`)
  if (rows.length === 0) return yield* new Bundle.BundleMissing({ sha256 })
  const meta = yield* Schema.decodeUnknownEffect(Stored)(rows[0]).pipe(
    Effect.mapError((error) => corrupt(`bad row: ${error.message}`))
  )
  const size = Number(meta.size)
  if (size > maxBytes) {
    return yield* new Bundle.BundleTooLarge({ bytes: size, limit: maxBytes, files: 0, biggest: [] })
  }
  if (meta.pieces !== Math.ceil(size / pieceBytes)) return yield* corrupt("its piece count does not match its size")
  const bytes = new Uint8Array(size)
  for (let piece = 0; piece < meta.pieces; piece++) {
    const found = yield* reach(
      sql`SELECT bytes FROM testbed_bundle_pieces WHERE sha256 = ${sha256} AND piece = ${piece}`
    )
    const chunk = found[0]?.bytes
    const expected = Math.min(pieceBytes, size - piece * pieceBytes)
    if (!(chunk instanceof Uint8Array) || chunk.length !== expected) return yield* corrupt(`piece ${piece} is bad`)
    bytes.set(chunk, piece * pieceBytes)
  }
  return bytes
})
