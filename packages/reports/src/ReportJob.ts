/**
 * What `testbed report` does, as one library call: render a run's reports, compare two runs, chart the history of
 * an experiment, or merge shards. The command line is decoded here into one `ReportJob` (usage problems fail as
 * `ReportUsage`, exit code 2), then run; the result is the list of files written.
 */
import { Clock, Effect, FileSystem, Option, Path, Runtime, Schema } from "effect"
import * as Comparison from "./Comparison.ts"
import * as ComparisonReport from "./ComparisonReport.ts"
import * as History from "./History.ts"
import * as HistoryReport from "./HistoryReport.ts"
import * as Merge from "./Merge.ts"
import * as ReportWriter from "./ReportWriter.ts"
import * as RunDirectory from "./RunDirectory.ts"

export type ReportJob =
  | {
      readonly _tag: "Render"
      readonly run: string
      readonly formats?: ReadonlyArray<ReportWriter.Format>
      readonly generatedAt?: string
    }
  | { readonly _tag: "Compare"; readonly baseline: string; readonly current: string; readonly output?: string }
  | { readonly _tag: "History"; readonly directory: string; readonly experiment?: string; readonly output?: string }
  | {
      readonly _tag: "Merge"
      readonly output: string
      readonly runs: ReadonlyArray<string>
      readonly formats?: ReadonlyArray<ReportWriter.Format>
      readonly generatedAt?: string
    }

/** The command line does not say one thing to do. */
export class ReportUsage extends Schema.TaggedError<ReportUsage>()("ReportUsage", { reason: Schema.String }) {
  override get message(): string {
    return `report: ${this.reason}`
  }
  override get [Runtime.errorExitCode](): number {
    return 2
  }
}

/** The merged reports would go into a run's own directory, where re-rendering its log would overwrite them. */
export class MergeIntoRun extends Schema.TaggedError<MergeIntoRun>()("MergeIntoRun", { path: Schema.String }) {
  override get message(): string {
    return `${this.path} holds a run's ${ReportWriter.eventLogName}: merge into a directory of its own (for example the one holding the shards)`
  }
  override get [Runtime.errorExitCode](): number {
    return 2
  }
}

/** The command line as the CLI parsed it. */
export interface Arguments {
  readonly paths: ReadonlyArray<string>
  readonly compare: Option.Option<string>
  readonly history: Option.Option<string>
  readonly merge: Option.Option<string>
  readonly output: Option.Option<string>
  readonly experiment: Option.Option<string>
  readonly formats: Option.Option<ReadonlyArray<ReportWriter.Format>>
  readonly generatedAt: Option.Option<string>
}

const usage = (reason: string) => Effect.fail(new ReportUsage({ reason }))

const only = <K extends string, A>(key: K, value: Option.Option<A>): { readonly [P in K]?: A } =>
  (Option.isSome(value) ? { [key]: value.value } : {}) as { readonly [P in K]?: A }

/** Flags that only some modes take, checked so a flag is never silently ignored. */
const misplaced = (args: Arguments, mode: Mode): string | undefined => {
  if (Option.isSome(args.experiment) && mode !== "history") return "--experiment goes with --history"
  if (Option.isSome(args.output) && mode !== "compare" && mode !== "history") {
    return "--output goes with --compare or --history (--merge takes its directory first: --merge OUT RUN…)"
  }
  if (Option.isSome(args.formats) && mode !== "render" && mode !== "merge") return "--format goes with a run or --merge"
  if (Option.isSome(args.generatedAt) && mode !== "render" && mode !== "merge") {
    return "--generated-at goes with a run or --merge"
  }
  return undefined
}

type Mode = "render" | "compare" | "history" | "merge"

/** The mode the flags choose, with the flag's value (the first run, the directory, the merged directory). */
const modeOf = (args: Arguments): { readonly mode: Mode; readonly value: string } | undefined => {
  const flags: ReadonlyArray<readonly [Mode, Option.Option<string>]> = [
    ["compare", args.compare],
    ["history", args.history],
    ["merge", args.merge]
  ]
  const set = flags.flatMap(([mode, v]) => (Option.isSome(v) ? [{ mode, value: v.value }] : []))
  return set.length > 1 ? undefined : (set[0] ?? { mode: "render", value: "" })
}

const checkedTime = (value: Option.Option<string>) =>
  Option.isSome(value) && Number.isNaN(Date.parse(value.value))
    ? usage(`--generated-at ${JSON.stringify(value.value)} is not a time (ISO 8601: 2026-03-15T00:00:00.000Z)`)
    : Effect.void

/** Decodes the command line into one job. */
export const fromArguments = Effect.fn("ReportJob.fromArguments")(function* (args: Arguments) {
  const chosen = modeOf(args)
  if (chosen === undefined) return yield* usage("choose one of --compare, --history and --merge")
  const { mode, value } = chosen
  const wrong = misplaced(args, mode)
  if (wrong !== undefined) return yield* usage(wrong)
  yield* checkedTime(args.generatedAt)
  const paths = args.paths
  switch (mode) {
    case "compare":
      if (paths.length !== 1) return yield* usage("--compare takes two runs: --compare RUN_A RUN_B")
      return {
        _tag: "Compare",
        baseline: value,
        current: paths[0]!,
        ...only("output", args.output)
      } satisfies ReportJob
    case "history":
      if (paths.length !== 0) return yield* usage("--history takes one directory: --history DIR")
      return {
        _tag: "History",
        directory: value,
        ...only("experiment", args.experiment),
        ...only("output", args.output)
      } satisfies ReportJob
    case "merge":
      if (paths.length === 0) return yield* usage("--merge takes a directory and the runs to merge: --merge OUT RUN…")
      return {
        _tag: "Merge",
        output: value,
        runs: paths,
        ...only("formats", args.formats),
        ...only("generatedAt", args.generatedAt)
      } satisfies ReportJob
    case "render":
      if (paths.length !== 1) {
        return yield* usage(
          paths.length === 0
            ? "which run? testbed report OUTPUT_DIR"
            : "one run at a time (to combine shards: --merge OUT RUN…)"
        )
      }
      return {
        _tag: "Render",
        run: paths[0]!,
        ...only("formats", args.formats),
        ...only("generatedAt", args.generatedAt)
      } satisfies ReportJob
  }
})

/** The directory a run path stands for (a run directory, or the directory of its log or summary file). */
const runDirectoryOf = Effect.fn("ReportJob.runDirectoryOf")(function* (run: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const info = yield* fs.stat(run).pipe(Effect.option)
  return Option.isSome(info) && info.value.type === "Directory" ? run : path.dirname(run)
})

const compare = Effect.fn("ReportJob.compare")(function* (job: Extract<ReportJob, { _tag: "Compare" }>) {
  const path = yield* Path.Path
  const baseline = yield* RunDirectory.read(job.baseline, { evidence: false })
  const current = yield* RunDirectory.read(job.current, { evidence: false })
  const comparison = Comparison.compare(baseline, current)
  const dir = job.output ?? (yield* runDirectoryOf(job.current))
  const md = path.join(dir, ComparisonReport.markdownFileName)
  const html = path.join(dir, ComparisonReport.htmlFileName)
  yield* ReportWriter.writeAtomically(md, [ComparisonReport.markdown(comparison)])
  yield* ReportWriter.writeAtomically(html, [ComparisonReport.html(comparison)])
  return [md, html]
})

const history = Effect.fn("ReportJob.history")(function* (job: Extract<ReportJob, { _tag: "History" }>) {
  const path = yield* Path.Path
  const trend = yield* History.collect(
    job.directory,
    job.experiment === undefined ? {} : { experiment: job.experiment }
  )
  const dir = job.output ?? job.directory
  const html = path.join(dir, HistoryReport.htmlFileName)
  const json = path.join(dir, HistoryReport.jsonFileName)
  yield* ReportWriter.writeAtomically(html, [HistoryReport.html(trend)])
  yield* ReportWriter.writeAtomically(json, HistoryReport.json(trend))
  return [html, json]
})

const merge = Effect.fn("ReportJob.merge")(function* (job: Extract<ReportJob, { _tag: "Merge" }>) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  if (yield* fs.exists(path.join(job.output, ReportWriter.eventLogName)).pipe(Effect.orElseSucceed(() => false))) {
    return yield* new MergeIntoRun({ path: job.output })
  }
  const shards = yield* Effect.forEach(job.runs, (run) =>
    Effect.gen(function* () {
      const summary = yield* RunDirectory.read(
        run,
        job.generatedAt === undefined ? {} : { generatedAt: job.generatedAt }
      )
      const prefix = path.relative(path.resolve(job.output), path.resolve(yield* runDirectoryOf(run)))
      return { summary, prefix } satisfies Merge.Shard
    })
  )
  const generatedAt = job.generatedAt ?? new Date(yield* Clock.currentTimeMillis).toISOString()
  const merged = yield* Merge.merge(shards, { generatedAt })
  return yield* ReportWriter.writeSummary(merged, job.output, job.formats === undefined ? {} : { formats: job.formats })
})

/** Runs a job; returns the files written. */
export const run = Effect.fn("ReportJob.run")(function* (job: ReportJob) {
  switch (job._tag) {
    case "Render":
      return yield* ReportWriter.renderDirectory(job.run, {
        ...(job.formats === undefined ? {} : { formats: job.formats }),
        ...(job.generatedAt === undefined ? {} : { generatedAt: job.generatedAt })
      })
    case "Compare":
      return yield* compare(job)
    case "History":
      return yield* history(job)
    case "Merge":
      return yield* merge(job)
  }
})

/** What the `report` command calls: decode its command line, run the job, return the files written. */
export const runArguments = Effect.fn("ReportJob.runArguments")(function* (args: Arguments) {
  return (yield* run(yield* fromArguments(args))) as ReadonlyArray<string>
})
