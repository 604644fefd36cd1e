/**
 * Writes the reports of a run into its output directory, from its event log (`<outputDir>/events.jsonl`) or from
 * a summary already folded. Every renderer is a pure function of the ExperimentSummary, so re-rendering a log gives the
 * same bytes for the same `generatedAt`.
 */
import { randomUUID } from "node:crypto"
import { Effect, Exit, FileSystem, Runtime, Schema, SchemaTransformation } from "effect"
import { EventLog, ExitCode } from "@testbed/events"
import * as Collector from "./Collector.ts"
import * as Evidence from "./Evidence.ts"
import * as CtrfReport from "./CtrfReport.ts"
import * as HtmlReport from "./HtmlReport.ts"
import * as JsonReport from "./JsonReport.ts"
import * as JUnitReport from "./JUnitReport.ts"
import * as MarkdownReport from "./MarkdownReport.ts"
import type { ExperimentSummary } from "./ExperimentSummary.ts"

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

interface Renderer {
  readonly fileName: string
  readonly render: (summary: ExperimentSummary) => string
  /** The same text in pieces, for files too large to hold as one string. */
  readonly chunks: (summary: ExperimentSummary) => Iterable<string>
}

const renderers: Record<Format, Renderer> = {
  json: JsonReport,
  md: MarkdownReport,
  junit: JUnitReport,
  ctrf: CtrfReport,
  html: HtmlReport
}

export const fileName = (format: Format): string => renderers[format].fileName

/** Renders one format to a string (a run too large for one string is written with `writeSummary`). */
export const render = (summary: ExperimentSummary, format: Format): string => renderers[format].render(summary)

/** Renders one format as pieces whose concatenation is `render(summary, format)`. */
export const chunks = (summary: ExperimentSummary, format: Format): Iterable<string> =>
  renderers[format].chunks(summary)

/** A report file could not be written. */
export class ReportWriteFailed extends Schema.TaggedError<ReportWriteFailed>()("ReportWriteFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot write ${this.path}: ${this.reason}`
  }
}

/** The event log could not be opened or read (missing file, permissions). */
export class EventLogUnreadable extends Schema.TaggedError<EventLogUnreadable>()("EventLogUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
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

/** Pieces are gathered to about this many characters before each write. */
const batchLength = 1 << 20

const encoder = new TextEncoder()

/**
 * Writes pieces of text to `file` through a temporary file beside it, then renames it into place, so a reader never
 * sees half a report. The temporary name is unique and unguessable and the file is created exclusively (`wx`,
 * O_CREAT|O_EXCL): an existing file or a symbolic link planted at that name is never opened or followed. A rename
 * replaces a link at `file` itself rather than writing through it. On failure or interruption the temporary file
 * is removed.
 */
export const writeAtomically = Effect.fn("ReportWriter.writeAtomically")(function* (
  file: string,
  content: Iterable<string>
) {
  const fs = yield* FileSystem.FileSystem
  const failed = (error: { readonly message: string }) => new ReportWriteFailed({ path: file, reason: error.message })
  const slash = file.lastIndexOf("/")
  const temp = `${file.slice(0, slash + 1)}.${file.slice(slash + 1)}.${randomUUID()}.tmp`
  let created = false
  const write = Effect.gen(function* () {
    const handle = yield* fs.open(temp, { flag: "wx", mode: 0o644 })
    created = true
    let batch: Array<string> = []
    let length = 0
    for (const piece of content) {
      batch.push(piece)
      length += piece.length
      if (length >= batchLength) {
        yield* handle.writeAll(encoder.encode(batch.join("")))
        batch = []
        length = 0
      }
    }
    if (batch.length > 0) yield* handle.writeAll(encoder.encode(batch.join("")))
    yield* handle.sync
  }).pipe(Effect.scoped)
  yield* Effect.andThen(write, fs.rename(temp, file)).pipe(
    Effect.mapError(failed),
    Effect.onExit((exit) => (Exit.isSuccess(exit) || !created ? Effect.void : Effect.ignore(fs.remove(temp))))
  )
})

/** Writes the chosen formats (default: all) of a summary into `outputDir`; returns the paths written. */
export const writeSummary = Effect.fn("ReportWriter.writeSummary")(function* (
  summary: ExperimentSummary,
  outputDir: string,
  options: WriteOptions = {}
) {
  const fs = yield* FileSystem.FileSystem
  yield* fs
    .makeDirectory(outputDir, { recursive: true })
    .pipe(Effect.mapError((error) => new ReportWriteFailed({ path: outputDir, reason: error.message })))
  const written: Array<string> = []
  for (const format of unique(options.formats)) {
    const file = join(outputDir, fileName(format))
    yield* writeAtomically(file, chunks(summary, format))
    written.push(file)
  }
  return written as ReadonlyArray<string>
})

export interface RenderOptions extends WriteOptions {
  /** ISO time recorded as `generated_at`; fix it for byte-identical output. Default: now. */
  readonly generatedAt?: string
}

const directoryOf = (file: string) => {
  const slash = file.lastIndexOf("/")
  return slash < 0 ? "." : slash === 0 ? "/" : file.slice(0, slash)
}

/**
 * Folds an event log into a summary, with the evidence of its failures read from the log's directory (the run
 * directory its paths are relative to: `Evidence.attach`; `evidence: false` leaves it out). `generated_at` defaults
 * to now; the log is recorded by its file name, so the summary does not depend on where the directory was.
 */
export const summarize = Effect.fn("ReportWriter.summarize")(function* (
  eventLogPath: string,
  options: { readonly generatedAt?: string; readonly evidence?: boolean } = {}
) {
  const summary = yield* Collector.fold(EventLog.read(eventLogPath), {
    eventLog: eventLogPath.slice(eventLogPath.lastIndexOf("/") + 1),
    ...(options.generatedAt === undefined ? {} : { generatedAt: options.generatedAt })
  }).pipe(
    Effect.catchTag("EventLogUnavailable", (e) =>
      Effect.fail(new EventLogUnreadable({ path: e.path, reason: e.reason }))
    )
  )
  return options.evidence === false ? summary : yield* Evidence.attach(summary, directoryOf(eventLogPath))
})

/** Reads `<outputDir>/events.jsonl` and writes the reports beside it. Returns the files written. */
export const renderDirectory = Effect.fn("ReportWriter.renderDirectory")(function* (
  outputDir: string,
  options: RenderOptions = {}
) {
  const summary = yield* summarize(
    join(outputDir, eventLogName),
    options.generatedAt === undefined ? {} : { generatedAt: options.generatedAt }
  )
  return yield* writeSummary(summary, outputDir, options.formats === undefined ? {} : { formats: options.formats })
})
