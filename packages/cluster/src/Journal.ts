/**
 * The run journal, `RUNDIR/cluster-journal.jsonl`: every dispatch of an attempt (its entity id and the signed
 * request) is appended *before* the request is sent, and every runner that starts it when its `Started` arrives.
 * `testbed run --resume RUNDIR` reads it to re-send the very same requests: the engine deduplicates them by
 * primary key, so a running attempt is re-attached (its stream continues from the first chunk not yet
 * acknowledged) instead of run twice.
 */
import { Effect, FileSystem, Path, type PlatformError, Schema, Semaphore } from "effect"
import { AttemptRequest } from "./AttemptProtocol.ts"

export const fileName = "cluster-journal.jsonl"

export const Dispatched = Schema.TaggedStruct("Dispatched", {
  test: Schema.String,
  entityId: Schema.String,
  request: AttemptRequest
})

export const Began = Schema.TaggedStruct("Began", {
  entityId: Schema.String,
  incarnation: Schema.String,
  runner: Schema.String,
  host: Schema.String
})

export const Entry = Schema.Union([Dispatched, Began])
export type Entry = typeof Entry.Type

const encode = Schema.encodeSync(Schema.fromJsonString(Entry))
const decode = Schema.decodeUnknownEffect(Schema.fromJsonString(Entry))

/** Appends one entry (one line). */
export const append = Effect.fn("Journal.append")(function* (runDir: string, entry: Entry) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  yield* fs.writeFileString(path.join(runDir, fileName), `${encode(entry)}\n`, { flag: "a" })
})

/** Appends entries to a journal held open. */
export type Appender = (entry: Entry) => Effect.Effect<void, PlatformError.PlatformError>

/**
 * The journal of `runDir` held open for appending until the scope closes: one write per entry. `append` opens,
 * writes and closes the file, three file-system round trips (each a turn of the event loop) on the path of every
 * dispatch. Entries are written one at a time (each a whole line); what a write returned is in the file even if
 * the process is killed next, as with `append`.
 */
export const appender = Effect.fn("Journal.appender")(function* (runDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const file = yield* fs.open(path.join(runDir, fileName), { flag: "a" })
  const oneAtATime = Semaphore.makeUnsafe(1).withPermits(1)
  const encoder = new TextEncoder()
  const write: Appender = (entry) => oneAtATime(file.writeAll(encoder.encode(`${encode(entry)}\n`)))
  return write
})

/** The journal's entries; a torn last line (the coordinator killed mid-write) is left out. */
export const read = Effect.fn("Journal.read")(function* (runDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const text = yield* fs.readFileString(path.join(runDir, fileName))
  const lines = text.split("\n").filter((line) => line !== "")
  const entries = yield* Effect.forEach(lines, (line) => Effect.option(decode(line)))
  return entries.flatMap((entry) => (entry._tag === "Some" ? [entry.value] : []))
})
