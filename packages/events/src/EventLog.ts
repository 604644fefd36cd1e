/**
 * The JSONL record of a run: one event per line, appended as they happen and read back as a Stream.
 * A crash can leave a half-written last line; reading reports and skips it, never losing an earlier line.
 */
import {
  Cause,
  Context,
  Deferred,
  Effect,
  Exit,
  FileSystem,
  Layer,
  Result,
  Runtime,
  Schema,
  Semaphore,
  Stream
} from "effect"
import * as Event from "./Event.ts"
import { EventBus } from "./EventBus.ts"
import * as TestbedEvent from "./TestbedEvent.ts"
import * as WriteFailed from "./WriteFailed.ts"
import * as ExitCode from "./ExitCode.ts"

/** The log file could not be opened or read (a failed write is a `WriteFailed`). */
export class EventLogUnavailable extends Schema.TaggedError<EventLogUnavailable>()("EventLogUnavailable", {
  path: Schema.String,
  reason: Schema.String
}) {
  /** A log the user named that is missing or unreadable; a run's own log that cannot be opened is a `WriteFailed`. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `event log ${this.path}: ${this.reason}`
  }
}

/** A complete (newline-terminated) line is not an event: the file was edited or corrupted, not cut off. */
export class EventLogLineInvalid extends Schema.TaggedError<EventLogLineInvalid>()("EventLogLineInvalid", {
  path: Schema.String,
  line: Schema.Int,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.path}:${this.line}: not an event: ${this.reason}`
  }
}

export type EventLogError = EventLogUnavailable | EventLogLineInvalid

/** Bytes buffered before a write is forced. */
const flushThreshold = 64 * 1024
const encoder = new TextEncoder()

export class EventLog extends Context.Service<
  EventLog,
  {
    readonly path: string
    /** Buffers one event; written at the latest by `flush` or when the layer's scope closes. */
    readonly append: (event: Event.Event) => Effect.Effect<void, WriteFailed.WriteFailed>
    /** Appends events and writes them out before returning. */
    readonly appendAll: (events: Iterable<Event.Event>) => Effect.Effect<void, WriteFailed.WriteFailed>
    /**
     * Writes out what is buffered. A write that fails (a full disk) is undone: the file is cut back to its last
     * complete line, so it never ends in half an event, and the error names the file and the system's code.
     */
    readonly flush: Effect.Effect<void, WriteFailed.WriteFailed>
  }
>()("@testbed/events/EventLog") {
  /** Appends to `path` (created with its parent directories); everything buffered is flushed when the scope closes. */
  static readonly layer = (path: string): Layer.Layer<EventLog, EventLogUnavailable, FileSystem.FileSystem> =>
    Layer.effect(EventLog, open(path))
}

const open = Effect.fnUntraced(function* (path: string) {
  const fs = yield* FileSystem.FileSystem
  const unavailable = (error: { readonly message: string }) => new EventLogUnavailable({ path, reason: error.message })
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "."
  yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(unavailable))
  const file = yield* fs.open(path, { flag: "a" }).pipe(Effect.mapError(unavailable))
  // Where the last complete line ends: a failed write is cut back to it.
  let written = Number((yield* file.stat.pipe(Effect.mapError(unavailable))).size)
  const lock = yield* Semaphore.make(1)
  let buffer: Array<string> = []
  let buffered = 0
  const flush = lock.withPermits(1)(
    Effect.suspend(() => {
      if (buffer.length === 0) return Effect.void
      const bytes = encoder.encode(buffer.join(""))
      buffer = []
      buffered = 0
      return file.writeAll(bytes).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            written += bytes.length
          })
        ),
        Effect.catch((error) =>
          Effect.andThen(Effect.ignore(file.truncate(written)), Effect.fail(WriteFailed.fromError(path, error)))
        )
      )
    })
  )
  const push = (event: Event.Event) => {
    const line = `${JSON.stringify(event)}\n`
    buffer.push(line)
    buffered += line.length
  }
  // Registered after `open`, so it runs before the file is closed.
  yield* Effect.addFinalizer(() => Effect.ignore(flush))
  return EventLog.of({
    path,
    append: (event) =>
      Effect.suspend(() => {
        push(event)
        return buffered >= flushThreshold ? flush : Effect.void
      }),
    appendAll: (events) =>
      Effect.suspend(() => {
        for (const event of events) push(event)
        return flush
      }),
    flush
  })
})

export interface ReadOptions {
  /** What to do with a complete line that is not an event. Default `fail`. */
  readonly onInvalidLine?: "fail" | "skip"
}

const decodeEvent = Schema.decodeUnknownExit(Event.Event)

type Parsed = { readonly ok: true; readonly event: Event.Event } | { readonly ok: false; readonly reason: string }

/** A line's JSON, or why it is not JSON. */
const jsonOf = (
  text: string
): { readonly ok: true; readonly json: unknown } | { readonly ok: false; readonly reason: string } => {
  try {
    return { ok: true, json: JSON.parse(text) }
  } catch (error) {
    return { ok: false, reason: `invalid JSON: ${(error as Error).message}` }
  }
}

/** Why a decoding failed, in one line. */
const failureOf = (cause: Cause.Cause<Schema.SchemaError>, otherwise: string): string =>
  cause.reasons.find(Cause.isFailReason)?.error.message ?? otherwise

const parseLine = (text: string): Parsed => {
  const parsed = jsonOf(text)
  if (!parsed.ok) return parsed
  const decoded = decodeEvent(parsed.json)
  if (Exit.isSuccess(decoded)) return { ok: true, event: decoded.value }
  return { ok: false, reason: failureOf(decoded.cause, "not an event envelope") }
}

const decodeTestbedEvent = Schema.decodeUnknownExit(TestbedEvent.TestbedEvent)

/**
 * A whole log's text (what `events.jsonl` holds) as the events of the union, in file order: a short log read at
 * once, as a test or a tool does. Strict: the first line that is not one of the union's events fails, with its
 * line number (a blank line is skipped). `read` streams a log of any size and forgives a cut-off last line.
 */
export const decodeText = (
  text: string,
  path: string
): Result.Result<ReadonlyArray<TestbedEvent.TestbedEvent>, EventLogLineInvalid> => {
  const events: Array<TestbedEvent.TestbedEvent> = []
  for (const [index, raw] of text.split("\n").entries()) {
    if (raw.trim() === "") continue
    const parsed = jsonOf(raw)
    const decoded = parsed.ok ? decodeTestbedEvent(parsed.json) : undefined
    if (decoded !== undefined && Exit.isSuccess(decoded)) {
      events.push(decoded.value)
      continue
    }
    const reason = parsed.ok ? failureOf(decoded!.cause, "not an event of the union") : parsed.reason
    return Result.fail(new EventLogLineInvalid({ path, line: index + 1, reason }))
  }
  return Result.succeed(events)
}

/**
 * Reads a log back as decoded envelopes, in file order. A last line without its newline that does not parse is
 * a write cut short by a crash: it is logged as a warning and skipped. Refine envelopes with `TestbedEvent`.
 */
export const read = (
  path: string,
  options: ReadOptions = {}
): Stream.Stream<Event.Event, EventLogError, FileSystem.FileSystem> =>
  Stream.unwrap(
    Effect.map(FileSystem.FileSystem, (fs) =>
      Stream.suspend(() => {
        // What follows the last newline so far, and how many lines were seen, across chunks.
        let leftover = ""
        let line = 0
        const body = fs.stream(path, { chunkSize: 256 * 1024 }).pipe(
          Stream.mapError((error) => new EventLogUnavailable({ path, reason: error.message })),
          Stream.decodeText,
          Stream.mapAccumArrayEffect(
            () => undefined,
            (_, chunks) => {
              const out: Array<Event.Event> = []
              const text = leftover + chunks.join("")
              let start = 0
              for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
                line++
                const raw = text.slice(start, nl)
                start = nl + 1
                if (raw.trim() === "") continue
                const parsed = parseLine(raw)
                if (parsed.ok) out.push(parsed.event)
                else if (options.onInvalidLine !== "skip") {
                  return Effect.fail(new EventLogLineInvalid({ path, line, reason: parsed.reason }))
                }
              }
              leftover = text.slice(start)
              return Effect.succeed([undefined, out] as const)
            }
          )
        )
        const tail = Stream.unwrap(
          Effect.suspend(() => {
            if (leftover.trim() === "") return Effect.succeed(Stream.empty)
            const parsed = parseLine(leftover)
            if (parsed.ok) return Effect.succeed(Stream.make(parsed.event))
            return Effect.as(
              Effect.logWarning(
                `${path}:${line + 1}: skipping a truncated last line (${leftover.length} chars): ${parsed.reason}`
              ),
              Stream.empty
            )
          })
        )
        return Stream.concat(body, tail)
      })
    )
  )

/**
 * The event log of a run, kept by `storage`. `failed` fails once a write has failed (and never succeeds): a run
 * races its work against it, so a full disk stops the run instead of being silently ignored.
 */
export class EventLogStorage extends Context.Service<
  EventLogStorage,
  {
    readonly path: string
    readonly failed: Effect.Effect<never, WriteFailed.WriteFailed>
  }
>()("@testbed/events/EventLogStorage") {}

/**
 * An observer that writes every event published on the bus to `path`. It subscribes when the layer is built,
 * writes each batch as it arrives, and on scope close writes whatever is still queued before the file closes.
 * After a failed write it writes nothing more (the file ends at its last complete line) but keeps taking
 * batches, so publishers never wait on it; the failure is in `EventLogStorage.failed`.
 */
export const storage = (
  path: string
): Layer.Layer<EventLogStorage, EventLogUnavailable, EventBus | FileSystem.FileSystem> =>
  Layer.effect(
    EventLogStorage,
    Effect.gen(function* () {
      const log = yield* open(path)
      const bus = yield* EventBus
      const failure = yield* Deferred.make<never, WriteFailed.WriteFailed>()
      yield* bus.observe((batch) =>
        Effect.flatMap(Deferred.isDone(failure), (failed) =>
          failed ? Effect.void : log.appendAll(batch).pipe(Effect.catch((error) => Deferred.fail(failure, error)))
        ).pipe(Effect.asVoid)
      )
      return EventLogStorage.of({ path, failed: Deferred.await(failure) })
    })
  )
