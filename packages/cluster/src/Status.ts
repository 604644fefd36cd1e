/**
 * `testbed cluster status`: the runners in `testbed_runners`, live or not, with their host, labels, free slots and
 * the tests they run now. It reads Postgres only (no cluster node is started). Where the rows come from is a seam
 * (`Directories`): the cluster's Postgres by default, given rows in `layerTest` (the app's in-process tests).
 */
import { Context, Duration, Effect, Layer, type Redacted } from "effect"
import * as ClusterLayers from "./ClusterLayers.ts"
import * as RunnerDirectory from "./RunnerDirectory.ts"

/** The runner table of the cluster whose Postgres is at `url`. */
const fromPostgres = (url: Redacted.Redacted<string>) =>
  Effect.andThen(RunnerDirectory.migrate(), RunnerDirectory.list()).pipe(Effect.provide(ClusterLayers.postgres(url)))

/** Where `runners` reads the runner table: the cluster's Postgres unless a layer says otherwise. */
export const Directories = Context.Reference<{
  readonly list: (
    url: Redacted.Redacted<string>
  ) => Effect.Effect<ReadonlyArray<RunnerDirectory.RunnerRow>, Effect.Error<ReturnType<typeof fromPostgres>>>
}>("@testbed/cluster/Status/Directories", { defaultValue: () => ({ list: fromPostgres }) })

/** The live directory: the cluster's Postgres. */
export const layer = Layer.succeed(Directories, { list: fromPostgres })

/** A directory of the given rows, whatever the URL: no database. */
export const layerTest = (rows: ReadonlyArray<RunnerDirectory.RunnerRow>) =>
  Layer.succeed(Directories, { list: () => Effect.succeed(rows) })

/** The runners, as rows; `live` when heard from within the lock expiry. */
export const runners = Effect.fn("Status.runners")(function* (
  url: Redacted.Redacted<string>,
  lockExpiry: Duration.Duration
) {
  const directory = yield* Directories
  const rows = yield* directory.list(url)
  return rows.map((row) => ({ ...row, live: row.age <= Duration.toSeconds(lockExpiry) }))
})

/** A plain-text table of the runners. */
export const format = (rows: ReadonlyArray<RunnerDirectory.RunnerRow & { readonly live: boolean }>): string => {
  if (rows.length === 0) return "no runner has registered"
  const table = [
    // HOST: a runner is named `host:port` only by default; one given `--name` would not say where it runs.
    ["RUNNER", "STATE", "HOST", "ADDRESS", "LABELS", "FREE", "RUNNING", "LAST SEEN"],
    ...rows.map((row) => [
      row.name,
      row.live ? "live" : "gone",
      row.host,
      row.address,
      row.labels.join(",") || "-",
      `${Math.max(0, row.slots - row.busy)}/${row.slots}`,
      row.running.join("; ") || "-",
      `${row.age.toFixed(1)}s ago`
    ])
  ]
  const widths = table[0]!.map((_, column) => Math.max(...table.map((line) => line[column]!.length)))
  return table
    .map((line) =>
      line
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}
