/**
 * The wire protocol between a coordinator and the runners: one entity per test attempt, one persisted streaming
 * request per dispatch of it. Persisted requests are stored in Postgres and deduplicated by their primary key
 * (`runId/testKey/attempt/dispatch`), so a runner that dies mid-attempt has it re-run by another runner of the
 * same group on the same stream, and the same request sent again after a coordinator restart re-attaches.
 */
import { Schema } from "effect"
import { ClusterSchema, Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"

export const AttemptRequest = Schema.Struct({
  runId: Schema.String,
  /** The test's slug (its directory under `tests/`), unique in the run. */
  testKey: Schema.String,
  test: Schema.String,
  attempt: Schema.Int,
  /** How many times this attempt was dispatched before (a runner of another group after a group emptied). */
  dispatch: Schema.Int,
  /** The experiment file on the coordinator (where the runner reads it when there is no bundle) and its sha256. */
  file: Schema.String,
  fileSha256: Schema.String,
  pluginDirectories: Schema.Array(Schema.String),
  /** The sha256 of the experiment's bundle in Postgres (Bundle.ts); absent in requests of older coordinators. */
  bundle: Schema.optionalKey(Schema.String),
  timeoutMs: Schema.Finite,
  timeoutMessage: Schema.String,
  /** Epoch millis after which a runner refuses the request (a stale request found in storage). */
  notAfter: Schema.Finite,
  mac: Schema.String
})
export type AttemptRequest = typeof AttemptRequest.Type

export const Started = Schema.TaggedStruct("Started", {
  runner: Schema.String,
  host: Schema.String,
  incarnation: Schema.String,
  mac: Schema.String
})

/** Events of the attempt as JSON lines, in order, a batch at a time (at most 256 events). */
export const Events = Schema.TaggedStruct("Events", {
  incarnation: Schema.String,
  seq: Schema.Int,
  lines: Schema.Array(Schema.String),
  mac: Schema.String
})

/** A piece (at most 256 KiB) of a file of the attempt's directory; `path` is relative to that directory. */
export const ArtifactPiece = Schema.TaggedStruct("ArtifactPiece", {
  incarnation: Schema.String,
  path: Schema.String,
  offset: Schema.Int,
  bytes: Schema.Uint8Array,
  mac: Schema.String
})

export const Finished = Schema.TaggedStruct("Finished", {
  incarnation: Schema.String,
  status: Schema.String,
  reason: Schema.optionalKey(Schema.String),
  durationMs: Schema.Finite,
  events: Schema.Int,
  mac: Schema.String
})

export const AttemptChunk = Schema.Union([Started, Events, ArtifactPiece, Finished])
export type AttemptChunk = typeof AttemptChunk.Type

/** A runner would not run the attempt: bad signature, expired, the experiment file differs, no such test. */
export class AttemptRefused extends Schema.TaggedError<AttemptRefused>()("AttemptRefused", {
  runner: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `runner ${this.runner} refused the attempt: ${this.reason}`
  }
}

export const RunAttempt = Rpc.make("RunAttempt", {
  payload: AttemptRequest.fields,
  primaryKey: (request) => `${request.runId}/${request.testKey}/${request.attempt}/${request.dispatch}`,
  success: AttemptChunk,
  error: AttemptRefused,
  stream: true
})
  .annotate(ClusterSchema.Persisted, true)
  // A runner stopping gracefully interrupts its attempts at once; the next owner re-runs them.
  .annotate(ClusterSchema.InterruptOnTermination, true)

/** Entity ids are `<group>/<runId>/<testKey>/<attempt>/<dispatch>#<salt>`: the shard group is the first part. */
export const TestCaseAttempt = Entity.make("testbed/TestCaseAttempt/v1", [RunAttempt]).annotate(
  ClusterSchema.ShardGroup,
  (entityId) => String(entityId).split("/")[0] ?? "default"
)

/** What the request's signature covers: the entity id and every field but the signature, in a fixed order. */
export const requestParts = (entityId: string, request: Omit<AttemptRequest, "mac">): ReadonlyArray<string> => [
  "testbed/attempt/v1",
  entityId,
  JSON.stringify([
    request.runId,
    request.testKey,
    request.test,
    request.attempt,
    request.dispatch,
    request.file,
    request.fileSha256,
    request.pluginDirectories,
    request.timeoutMs,
    request.timeoutMessage,
    request.notAfter,
    // Only when present: requests journaled before bundles keep their signatures.
    ...(request.bundle === undefined ? [] : [request.bundle])
  ])
]

/** What a chunk's signature covers: the entity id and the chunk without its signature. */
export const chunkParts = (entityId: string, chunk: AttemptChunk): ReadonlyArray<string> => {
  switch (chunk._tag) {
    case "Started":
      return ["testbed/chunk/v1", entityId, chunk._tag, chunk.runner, chunk.host, chunk.incarnation]
    case "Events":
      return [
        "testbed/chunk/v1",
        entityId,
        chunk._tag,
        chunk.incarnation,
        String(chunk.seq),
        JSON.stringify(chunk.lines)
      ]
    case "ArtifactPiece":
      return [
        "testbed/chunk/v1",
        entityId,
        chunk._tag,
        chunk.incarnation,
        chunk.path,
        String(chunk.offset),
        Buffer.from(chunk.bytes).toString("base64")
      ]
    case "Finished":
      return [
        "testbed/chunk/v1",
        entityId,
        chunk._tag,
        chunk.incarnation,
        chunk.status,
        chunk.reason ?? "",
        String(chunk.durationMs),
        String(chunk.events)
      ]
  }
}
