/**
 * Reading a recorded run for a report: a run directory holding its event log (`events.jsonl`, folded, with the
 * evidence of its failures read from the directory), or holding only `experiment_summary.json` (a merged run, see
 * `Merge`), or the path of an event log or a summary file itself.
 */
import { Effect, FileSystem, Option, Path, Runtime, Schema } from "effect"
import type { ExperimentSummary } from "./ExperimentSummary.ts"
import * as JsonReport from "./JsonReport.ts"
import * as ReportWriter from "./ReportWriter.ts"

/** The path names no run: nothing there, or a directory with neither an event log nor a summary. */
export class RunNotFound extends Schema.TaggedError<RunNotFound>()("RunNotFound", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
  /** A wrong path given by the user: the usage exit code. */
  override get [Runtime.errorExitCode](): number {
    return 2
  }
}

/** An `experiment_summary.json` that is not a summary this version reads (another tool's, or damaged). */
export class SummaryUnreadable extends Schema.TaggedError<SummaryUnreadable>()("SummaryUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read the summary ${this.path}: ${this.reason}`
  }
  override get [Runtime.errorExitCode](): number {
    return 2
  }
}

export interface ReadOptions {
  /** ISO time recorded as `generated_at` when the run is folded from its log (default: now). */
  readonly generatedAt?: string
  /** Read the evidence of failures from the directory (default: true). */
  readonly evidence?: boolean
}

const readSummaryFile = Effect.fn("RunDirectory.readSummaryFile")(function* (file: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs
    .readFileString(file)
    .pipe(Effect.mapError((e) => new SummaryUnreadable({ path: file, reason: e.message })))
  return yield* JsonReport.decode(text).pipe(
    Effect.mapError((e) => new SummaryUnreadable({ path: file, reason: e.message }))
  )
})

/** The file a run is read from: its event log when it has one, else its summary. */
const sourceOf = Effect.fn("RunDirectory.sourceOf")(function* (path: string) {
  const fs = yield* FileSystem.FileSystem
  const p = yield* Path.Path
  const info = yield* fs.stat(path).pipe(Effect.option)
  if (Option.isNone(info)) return yield* new RunNotFound({ path, reason: "no such file or directory" })
  if (info.value.type !== "Directory") {
    return { kind: path.endsWith(".json") ? ("summary" as const) : ("log" as const), file: path }
  }
  const log = p.join(path, ReportWriter.eventLogName)
  if (yield* fs.exists(log).pipe(Effect.orElseSucceed(() => false))) return { kind: "log" as const, file: log }
  const summary = p.join(path, JsonReport.fileName)
  if (yield* fs.exists(summary).pipe(Effect.orElseSucceed(() => false)))
    return { kind: "summary" as const, file: summary }
  return yield* new RunNotFound({
    path,
    reason: `not a run directory: it holds neither ${ReportWriter.eventLogName} nor ${JsonReport.fileName}`
  })
})

/** The summary of the run at `path` (a run directory, an event log or a summary file). */
export const read = Effect.fn("RunDirectory.read")(function* (path: string, options: ReadOptions = {}) {
  const source = yield* sourceOf(path)
  if (source.kind === "summary") return (yield* readSummaryFile(source.file)) as ExperimentSummary
  return yield* ReportWriter.summarize(source.file, options)
})
