/**
 * Writes the reports of a run into its output directory, from its event log (`<outputDir>/events.jsonl`) or from
 * a summary already folded. Every renderer is a pure function of the RunSummary, so re-rendering a log gives the
 * same bytes for the same `generatedAt`.
 */
import { Effect, FileSystem, Schema, SchemaTransformation } from "effect"
import { EventLog } from "@testbed/events"
import * as Collector from "./Collector.ts"
import * as CtrfReport from "./CtrfReport.ts"
import * as HtmlReport from "./HtmlReport.ts"
import * as JsonReport from "./JsonReport.ts"
import * as JUnitReport from "./JUnitReport.ts"
import * as MarkdownReport from "./MarkdownReport.ts"
import type { RunSummary } from "./RunSummary.ts"

export const Format = Schema.Literals(["json", "md", "junit", "ctrf", "html"])
export type Format = typeof Format.Type

/** A comma-separated list of formats, as typed on a command line: `json,md,junit`. */
export const FormatList = Schema.String.pipe(
  Schema.decodeTo(
    Schema.Array(Format),
    // The split names are checked against `Format` by the target schema, hence the cast.
    SchemaTransformation.transform({
      decode: (s: string) =>
        s
          .split(",")
          .map((f) => f.trim())
          .filter((f) => f !== "") as ReadonlyArray<Format>,
      encode: (formats: ReadonlyArray<string>) => formats.join(",")
    })
  )
)

export const decodeFormatList = Schema.decodeUnknownEffect(FormatList)

/** Every format, in the order they are written. */
export const formats: ReadonlyArray<Format> = ["json", "md", "junit", "ctrf", "html"]

/** The name of the event log inside an output directory. */
export const eventLogName = "events.jsonl"

const renderers: Record<Format, { readonly fileName: string; readonly render: (summary: RunSummary) => string }> = {
  json: JsonReport,
  md: MarkdownReport,
  junit: JUnitReport,
  ctrf: CtrfReport,
  html: HtmlReport
}

export const fileName = (format: Format): string => renderers[format].fileName

/** Renders one format to a string. */
export const render = (summary: RunSummary, format: Format): string => renderers[format].render(summary)

/** A report file could not be written. */
export class ReportWriteFailed extends Schema.TaggedError<ReportWriteFailed>()("ReportWriteFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot write ${this.path}: ${this.reason}`
  }
}

/** The event log could not be opened or read (missing file, permissions). */
export class EventLogUnreadable extends Schema.TaggedError<EventLogUnreadable>()("EventLogUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read the event log ${this.path}: ${this.reason}`
  }
}

/** What rendering a directory can fail with; a complete line that is not an event fails as `EventLogLineInvalid`. */
export type ReportError = EventLogUnreadable | EventLog.EventLogLineInvalid | ReportWriteFailed

export interface WriteOptions {
  readonly formats?: ReadonlyArray<Format>
}

const join = (dir: string, name: string) => (dir === "" ? name : dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`)

const unique = (fs: ReadonlyArray<Format> | undefined): ReadonlyArray<Format> =>
  fs === undefined || fs.length === 0 ? formats : formats.filter((f) => fs.includes(f))

/** Writes the chosen formats (default: all) of a summary into `outputDir`; returns the paths written. */
export const writeSummary = Effect.fn("ReportWriter.writeSummary")(function* (
  summary: RunSummary,
  outputDir: string,
  options: WriteOptions = {}
) {
  const fs = yield* FileSystem.FileSystem
  const failed = (file: string) => (error: { readonly message: string }) =>
    new ReportWriteFailed({ path: file, reason: error.message })
  yield* fs.makeDirectory(outputDir, { recursive: true }).pipe(Effect.mapError(failed(outputDir)))
  const written: Array<string> = []
  for (const format of unique(options.formats)) {
    const file = join(outputDir, fileName(format))
    // Through a temporary file and a rename, so a reader never sees half a report.
    const temp = `${file}.tmp`
    yield* fs.writeFileString(temp, render(summary, format)).pipe(Effect.mapError(failed(file)))
    yield* fs.rename(temp, file).pipe(Effect.mapError(failed(file)))
    written.push(file)
  }
  return written as ReadonlyArray<string>
})

export interface RenderOptions extends WriteOptions {
  /** ISO time recorded as `generated_at`; fix it for byte-identical output. Default: now. */
  readonly generatedAt?: string
}

/**
 * Folds an event log into a summary. `generated_at` defaults to now; the log is recorded by its file name, so
 * the summary does not depend on where the directory was when it was rendered.
 */
export const summarize = (
  eventLogPath: string,
  options: { readonly generatedAt?: string } = {}
): Effect.Effect<RunSummary, EventLogUnreadable | EventLog.EventLogLineInvalid, FileSystem.FileSystem> =>
  Collector.fold(EventLog.read(eventLogPath), {
    eventLog: eventLogPath.slice(eventLogPath.lastIndexOf("/") + 1),
    ...(options.generatedAt === undefined ? {} : { generatedAt: options.generatedAt })
  }).pipe(
    Effect.catchTag("EventLogUnavailable", (e) =>
      Effect.fail(new EventLogUnreadable({ path: e.path, reason: e.reason }))
    ),
    Effect.withSpan("ReportWriter.summarize")
  )

/**
 * Reads `<outputDir>/events.jsonl` and writes the reports beside it. Returns the files written.
 */
export const renderDirectory = (
  outputDir: string,
  options: RenderOptions = {}
): Effect.Effect<ReadonlyArray<string>, ReportError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const summary = yield* summarize(
      join(outputDir, eventLogName),
      options.generatedAt === undefined ? {} : { generatedAt: options.generatedAt }
    )
    return yield* writeSummary(summary, outputDir, options.formats === undefined ? {} : { formats: options.formats })
  }).pipe(Effect.withSpan("ReportWriter.renderDirectory"))
