/**
 * The trend of one experiment over its runs in a directory (`outputs/`, where `testbed run` leaves one run
 * directory each): every run's counts and success rate, and for each test and each matrix cell its status in
 * every run and its pass rate. Runs are read one at a time and reduced to their statuses at once, so a directory of
 * many large runs costs the memory of one run plus a status per test per run.
 */
import { Effect, FileSystem, Option, Path, Runtime, Schema } from "effect"
import { type ExperimentSummary, isFailure, MatrixPosition, Status } from "./ExperimentSummary.ts"
import * as RunDirectory from "./RunDirectory.ts"

export const HistoryRun = Schema.Struct({
  /** The run's directory name inside the history directory. */
  directory: Schema.String,
  experiment_id: Schema.String,
  start_time: Schema.NullOr(Schema.String),
  status: Schema.String,
  total: Schema.Int,
  passed: Schema.Int,
  /** Failed, timed out or interrupted. */
  failed: Schema.Int,
  flaky: Schema.Int,
  success_rate: Schema.Finite
})
export type HistoryRun = typeof HistoryRun.Type

/** A status per run, oldest first (null: not in that run), and the share of runs it passed. */
const Trend = {
  statuses: Schema.Array(Schema.NullOr(Status)),
  /** Percent of runs with a verdict (not skipped, unsupported or absent) that passed (flaky included). */
  pass_rate: Schema.NullOr(Schema.Finite)
}

export const HistoryTest = Schema.Struct({ name: Schema.String, matrix: Schema.NullOr(MatrixPosition), ...Trend })
export type HistoryTest = typeof HistoryTest.Type

export const HistoryCell = Schema.Struct({
  matrix: Schema.NullOr(Schema.String),
  row: Schema.String,
  column: Schema.String,
  ...Trend
})
export type HistoryCell = typeof HistoryCell.Type

export const History = Schema.Struct({
  experiment_name: Schema.String,
  runs: Schema.Array(HistoryRun),
  /** Older runs of the experiment left out past `runLimit`. */
  runs_left_out: Schema.Int,
  /** Lowest pass rate first. */
  tests: Schema.Array(HistoryTest),
  cells: Schema.Array(HistoryCell)
})
export type History = typeof History.Type

/** The most recent runs a history shows. */
export const runLimit = 100

/** The directory holds no run (of the experiment asked for). */
export class NoRunsFound extends Schema.TaggedError<NoRunsFound>()("NoRunsFound", {
  directory: Schema.String,
  experiment: Schema.NullOr(Schema.String)
}) {
  override get message(): string {
    const of = this.experiment === null ? "" : ` of experiment ${JSON.stringify(this.experiment)}`
    return `${this.directory}: no runs${of} (a run is a directory holding events.jsonl or experiment_summary.json)`
  }
  override get [Runtime.errorExitCode](): number {
    return 2
  }
}

/** The directory holds runs of several experiments and none was chosen. */
export class HistoryMixesExperiments extends Schema.TaggedError<HistoryMixesExperiments>()("HistoryMixesExperiments", {
  directory: Schema.String,
  experiments: Schema.Array(Schema.Struct({ name: Schema.String, runs: Schema.Int }))
}) {
  override get message(): string {
    const list = this.experiments.map((e) => `${e.name} (${e.runs} runs)`).join(", ")
    return `${this.directory} holds runs of ${this.experiments.length} experiments: ${list}; choose one with --experiment NAME`
  }
  override get [Runtime.errorExitCode](): number {
    return 2
  }
}

/** One run reduced to what a history keeps. */
interface RunStatuses {
  readonly experiment: string
  readonly run: HistoryRun
  readonly tests: ReadonlyArray<{
    readonly name: string
    readonly matrix: MatrixPosition | null
    readonly status: Status
  }>
  readonly cells: ReadonlyArray<{
    readonly key: string
    readonly cell: Omit<HistoryCell, "statuses" | "pass_rate">
    readonly status: Status
  }>
}

const reduce = (directory: string, s: ExperimentSummary): RunStatuses => {
  const count = (keep: (st: Status) => boolean) => s.tests.results.filter((t) => keep(t.status)).length
  return {
    experiment: s.experiment_name ?? s.experiment_id,
    run: {
      directory,
      experiment_id: s.experiment_id,
      start_time: s.start_time,
      status: s.status,
      total: s.tests.total,
      passed: s.tests.passed,
      failed: count(isFailure),
      flaky: s.tests.flaky,
      success_rate: s.tests.success_rate
    },
    tests: s.tests.results.map((t) => ({ name: t.name, matrix: t.matrix, status: t.status })),
    cells: s.matrices.flatMap((m) =>
      m.cells.map((c) => ({
        key: JSON.stringify([m.name, c.row, c.column]),
        cell: { matrix: m.name, row: c.row, column: c.column },
        status: c.status
      }))
    )
  }
}

/** Every run directory directly inside `dir`, each reduced to its statuses (directories that are not runs skipped). */
const readRuns = Effect.fn("History.readRuns")(function* (dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const names = (yield* fs
    .readDirectory(dir)
    .pipe(Effect.mapError(() => new NoRunsFound({ directory: dir, experiment: null })))).sort()
  const runs: Array<RunStatuses> = []
  for (const name of names) {
    const summary = yield* RunDirectory.read(path.join(dir, name), { evidence: false }).pipe(
      Effect.asSome,
      Effect.catchTag("RunNotFound", () => Effect.succeed(Option.none<ExperimentSummary>()))
    )
    if (Option.isSome(summary)) runs.push(reduce(name, summary.value))
  }
  return runs
})

const passRate = (statuses: ReadonlyArray<Status | null>): number | null => {
  const verdicts = statuses.filter((s) => s !== null && s !== "skipped" && s !== "unsupported")
  if (verdicts.length === 0) return null
  const passed = verdicts.filter((s) => s === "passed" || s === "flaky").length
  return Math.round((passed / verdicts.length) * 10000) / 100
}

/** Per key, a status per run (oldest first); keys in the order of the latest run, then older ones. */
const trends = <T>(
  runs: ReadonlyArray<RunStatuses>,
  entries: (r: RunStatuses) => ReadonlyArray<{ readonly key: string; readonly value: T; readonly status: Status }>
) => {
  const byKey = new Map<string, { value: T; statuses: Array<Status | null> }>()
  for (const r of [...runs].reverse()) {
    for (const e of entries(r)) if (!byKey.has(e.key)) byKey.set(e.key, { value: e.value, statuses: [] })
  }
  runs.forEach((r, i) => {
    for (const t of byKey.values()) t.statuses.push(null)
    for (const e of entries(r)) {
      const t = byKey.get(e.key)
      if (t !== undefined) t.statuses[i] = e.status
    }
  })
  return [...byKey.values()].map((t) => ({ ...t, pass_rate: passRate(t.statuses) }))
}

const byStartTime = (a: RunStatuses, b: RunStatuses) =>
  (a.run.start_time ?? "").localeCompare(b.run.start_time ?? "") || a.run.directory.localeCompare(b.run.directory)

const choose = (dir: string, all: ReadonlyArray<RunStatuses>, experiment: string | undefined) => {
  const names = [...new Set(all.map((r) => r.experiment))]
  if (experiment === undefined && names.length > 1) {
    const experiments = names.map((name) => ({ name, runs: all.filter((r) => r.experiment === name).length }))
    return Effect.fail(new HistoryMixesExperiments({ directory: dir, experiments }))
  }
  const name = experiment ?? names[0]
  const runs = all.filter((r) => r.experiment === name)
  if (name === undefined || runs.length === 0) {
    return Effect.fail(new NoRunsFound({ directory: dir, experiment: experiment ?? null }))
  }
  return Effect.succeed({ name, runs: [...runs].sort(byStartTime) })
}

const lowestFirst = (a: { pass_rate: number | null }, b: { pass_rate: number | null }) =>
  (a.pass_rate ?? 101) - (b.pass_rate ?? 101)

/** The history of the experiment whose runs are in `dir` (`experiment` picks one when there are several). */
export const collect = Effect.fn("History.collect")(function* (
  dir: string,
  options: { readonly experiment?: string } = {}
) {
  const chosen = yield* choose(dir, yield* readRuns(dir), options.experiment)
  const runs = chosen.runs.slice(-runLimit)
  const tests = trends(runs, (r) => r.tests.map((t) => ({ key: t.name, value: t, status: t.status })))
  const cells = trends(runs, (r) => r.cells.map((c) => ({ key: c.key, value: c.cell, status: c.status })))
  return {
    experiment_name: chosen.name,
    runs: runs.map((r) => r.run),
    runs_left_out: chosen.runs.length - runs.length,
    tests: tests
      .map((t) => ({ name: t.value.name, matrix: t.value.matrix, statuses: t.statuses, pass_rate: t.pass_rate }))
      .sort(lowestFirst),
    cells: cells.map((c) => ({ ...c.value, statuses: c.statuses, pass_rate: c.pass_rate }))
  } satisfies History as History
})
