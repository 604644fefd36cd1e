/**
 * A replay's verdict as a file: what a replay service process leaves behind for whoever asked for it (an
 * experiment's `replay_passed` assertion reads it). JSON, decoded with its Schema when it is read back.
 */
import { ExitCode } from "@testbed/events"
import { Effect, FileSystem, Runtime, Schema } from "effect"
import type * as ReplayServer from "./ReplayServer.ts"

export const Failure = Schema.Struct({ tag: Schema.String, message: Schema.String })

export const Verdict = Schema.Struct({
  passed: Schema.Boolean,
  summary: Schema.Struct({
    connections: Schema.Int,
    completed: Schema.Int,
    stepsMatched: Schema.Int,
    bytesReceived: Schema.Int,
    bytesSent: Schema.Int
  }),
  failures: Schema.Array(Failure)
})
export type Verdict = typeof Verdict.Type

export class VerdictWriteFailed extends Schema.TaggedError<VerdictWriteFailed>()("VerdictWriteFailed", {
  file: Schema.String,
  reason: Schema.String
}) {
  /** The disk, not the replayed run. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot write the replay verdict ${this.file}: ${this.reason}`
  }
}

export const fromOutcome = (outcome: ReplayServer.Outcome): Verdict => ({
  passed: outcome.failures.length === 0,
  summary: {
    connections: outcome.summary.connections,
    completed: outcome.summary.completed,
    stepsMatched: outcome.summary.stepsMatched,
    bytesReceived: outcome.summary.bytesReceived,
    bytesSent: outcome.summary.bytesSent
  },
  failures: outcome.failures.map((failure) => ({ tag: failure._tag, message: failure.message }))
})

const encode = Schema.encodeSync(Schema.fromJsonString(Verdict))
const decode = Schema.decodeUnknownEffect(Schema.fromJsonString(Verdict))

export const write = Effect.fn("Verdict.write")(function* (file: string, verdict: Verdict) {
  const fs = yield* FileSystem.FileSystem
  yield* fs
    .writeFileString(file, `${encode(verdict)}\n`)
    .pipe(Effect.mapError((error) => new VerdictWriteFailed({ file, reason: error.message })))
})

/** The verdict a replay left in `file`, or the reason it is not there (missing, unreadable, not a verdict). */
export const read = Effect.fn("Verdict.read")(function* (file: string) {
  const fs = yield* FileSystem.FileSystem
  return yield* fs.readFileString(file).pipe(
    Effect.flatMap(decode),
    Effect.catch((error) => Effect.succeed(`no replay outcome in ${file}: ${error.message}`))
  )
})
