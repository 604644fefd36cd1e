/**
 * `testbed run [FILE] --resume RUNDIR --cluster URL`: continue a run whose coordinator was killed, in a new run
 * directory (FILE defaults to the one the run was started with, `experimentFile`). For each test, what the previous
 * coordinator recorded is carried over (its events from the old `events.jsonl`, its files); then
 * - a test that had finished is not run again;
 * - a test whose attempt was on a runner gets the very same request again (from the journal): the engine
 *   deduplicates it, so the attempt is re-attached where its stream stopped, not run twice;
 * - a test never dispatched runs as usual.
 * Events the old coordinator had received but not yet written when it was killed (at most one chunk per attempt)
 * are lost.
 */
import { EventBus, ExitCode, TestbedEvent } from "@testbed/events"
import type { Plan, TestCase } from "@testbed/experiments"
import { Effect, FileSystem, Path, Runtime, Schema } from "effect"
import * as Journal from "./Journal.ts"

export interface Previous {
  readonly runDir: string
  readonly runId: string
  readonly fileSha256: string
  readonly journal: ReadonlyArray<Journal.Entry>
  readonly events: ReadonlyArray<TestbedEvent.TestbedEvent>
}

/** The run directory cannot be resumed: no journal (not a cluster run), or another experiment file. */
export class ResumeMismatch extends Schema.TaggedError<ResumeMismatch>()("ResumeMismatch", {
  runDir: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot resume ${this.runDir}: ${this.reason}`
  }
  /** The user named the wrong directory or file. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

const decodeEvent = Schema.decodeUnknownEffect(Schema.fromJsonString(TestbedEvent.TestbedEvent))

/** Reads the previous run's journal and event log. */
export const load = Effect.fn("Resume.load")(function* (runDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const journal = yield* Journal.read(runDir).pipe(
    Effect.mapError(() => new ResumeMismatch({ runDir, reason: `no ${Journal.fileName}: not a cluster run` }))
  )
  const first = journal.find((entry) => entry._tag === "Dispatched")
  if (first === undefined) return yield* new ResumeMismatch({ runDir, reason: "nothing was dispatched" })
  const text = yield* fs
    .readFileString(path.join(runDir, "events.jsonl"))
    .pipe(Effect.mapError((error) => new ResumeMismatch({ runDir, reason: error.message })))
  const lines = text.split("\n").filter((line) => line !== "")
  // A torn last line (killed mid-write) is left out.
  const events = (yield* Effect.forEach(lines, (line) => Effect.option(decodeEvent(line)))).flatMap((event) =>
    event._tag === "Some" ? [event.value] : []
  )
  return {
    runDir,
    runId: first.request.runId,
    fileSha256: first.request.fileSha256,
    journal,
    events
  } satisfies Previous
})

/**
 * The experiment file a run was started with (its `experiment.started` event's `configurationFile`, absolute):
 * `testbed run --resume RUNDIR --cluster URL` needs no FILE. The coordinator still checks its content is unchanged.
 */
export const experimentFile = (previous: Previous): Effect.Effect<string, ResumeMismatch> => {
  const started = previous.events.find((event) => event.type === "experiment.started")
  const file = started?.type === "experiment.started" ? started.data.configurationFile : undefined
  return file === undefined
    ? Effect.fail(
        new ResumeMismatch({
          runDir: previous.runDir,
          reason: "its event log does not name the experiment file: give it (testbed run FILE --resume RUNDIR)"
        })
      )
    : Effect.succeed(file)
}

export type Carried =
  | { readonly _tag: "Finished"; readonly attempts: number; readonly result: TestCase.AttemptResult }
  | {
      readonly _tag: "Running"
      readonly attempts: number
      readonly entry: typeof Journal.Dispatched.Type
      readonly began: typeof Journal.Began.Type | undefined
    }
  | { readonly _tag: "Fresh"; readonly attempts: number }

const ofTest = (event: TestbedEvent.TestbedEvent, name: string) =>
  event.type !== "test.registered" && (event.entityId === name || event.entityId.startsWith(`${name}/`))

/** Carries one test over into the new run (events on the bus, files) and says where it stands. */
export const carry = Effect.fn("Resume.carry")(function* (previous: Previous, test: Plan.TestPlan, runDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const events = previous.events.filter((event) => ofTest(event, test.name))
  yield* EventBus.EventBus.use((bus) => bus.publishAll(events))
  const from = path.join(previous.runDir, "tests", test.slug)
  if (yield* fs.exists(from).pipe(Effect.orElseSucceed(() => false))) {
    yield* Effect.ignore(fs.copy(from, path.join(runDir, "tests", test.slug)))
  }
  const ends = events.flatMap((event) => (event.type === "test.finished" ? [event.data] : []))
  const dispatched = previous.journal.flatMap((entry) =>
    entry._tag === "Dispatched" && entry.test === test.name ? [entry] : []
  )
  const attempts = Math.max(0, ...ends.map((end) => end.attempt), ...dispatched.map((entry) => entry.request.attempt))
  const final = ends.at(-1)
  if (final !== undefined && final.willRetry !== true) {
    return {
      _tag: "Finished",
      attempts,
      result: {
        status: final.status,
        reason: final.errorMessage,
        durationMs: final.durationMs,
        logsPath: path.join(runDir, final.logsPath ?? path.join("tests", test.slug))
      }
    } satisfies Carried
  }
  const entry = dispatched.at(-1)
  if (entry === undefined) return { _tag: "Fresh", attempts } satisfies Carried
  const began = previous.journal.findLast(
    (candidate): candidate is typeof Journal.Began.Type =>
      candidate._tag === "Began" && candidate.entityId === entry.entityId
  )
  return { _tag: "Running", attempts, entry, began } satisfies Carried
})
