/**
 * The wire protocol between a coordinator and the runners: one entity per test attempt, one persisted streaming
 * request per dispatch of it. Persisted requests are stored in Postgres and deduplicated by their primary key
 * (`runId/testKey/attempt/dispatch`), so a runner that dies mid-attempt has it re-run by another runner of the
 * same group on the same stream, and the same request sent again after a coordinator restart re-attaches.
 *
 * Protocol 2 (this one): a runner packs what waits to be sent into reply rows of at most 256 KiB (each row is
 * stored and acknowledged: a Postgres round trip on both sides), small files several to a `Files` chunk, and the
 * attempt's last events into `Finished`. The version is in the signed request; a runner refuses any other.
 */
import { Schema } from "effect"
import { ClusterSchema, Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"

/** The version of the requests and chunks below (and of what their signatures cover). */
export const protocolVersion = 2

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
  /** The protocol the coordinator speaks; absent from the requests of protocol 1 (before it was sent). */
  protocol: Schema.optionalKey(Schema.Int),
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

/** A piece of a file of the attempt's directory, from `offset`; `path` is relative to that directory. */
export const FilePiece = Schema.Struct({
  path: Schema.String,
  offset: Schema.Int,
  bytes: Schema.Uint8Array
})

/** Pieces of the attempt's files, at most 256 KiB in all: several small files, or a piece of a large one. */
export const Files = Schema.TaggedStruct("Files", {
  incarnation: Schema.String,
  pieces: Schema.Array(FilePiece),
  mac: Schema.String
})

/** How the attempt ended, with its last events (its own `test.finished` among them), after all its files. */
export const Finished = Schema.TaggedStruct("Finished", {
  incarnation: Schema.String,
  status: Schema.String,
  reason: Schema.optionalKey(Schema.String),
  durationMs: Schema.Finite,
  events: Schema.Int,
  lines: Schema.Array(Schema.String),
  mac: Schema.String
})

export const AttemptChunk = Schema.Union([Started, Events, Files, Finished])
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
  `testbed/attempt/v${request.protocol ?? 1}`,
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
    request.protocol ?? 1,
    // Only when present: requests journaled before bundles keep their signatures.
    ...(request.bundle === undefined ? [] : [request.bundle])
  ])
]

const chunkDomain = `testbed/chunk/v${protocolVersion}`

/** What a chunk's signature covers: the entity id and the chunk without its signature. */
export const chunkParts = (entityId: string, chunk: AttemptChunk): ReadonlyArray<string> => {
  switch (chunk._tag) {
    case "Started":
      return [chunkDomain, entityId, chunk._tag, chunk.runner, chunk.host, chunk.incarnation]
    case "Events":
      return [chunkDomain, entityId, chunk._tag, chunk.incarnation, String(chunk.seq), JSON.stringify(chunk.lines)]
    case "Files":
      return [
        chunkDomain,
        entityId,
        chunk._tag,
        chunk.incarnation,
        JSON.stringify(
          chunk.pieces.map((piece) => [piece.path, piece.offset, Buffer.from(piece.bytes).toString("base64")])
        )
      ]
    case "Finished":
      return [
        chunkDomain,
        entityId,
        chunk._tag,
        chunk.incarnation,
        chunk.status,
        chunk.reason ?? "",
        String(chunk.durationMs),
        String(chunk.events),
        JSON.stringify(chunk.lines)
      ]
  }
}

/**
 * A refusal as the coordinator reports it. A runner of another version checks the request's signature against
 * its own protocol, so "bad signature" may mean either.
 */
export const refusalReason = (error: AttemptRefused): string =>
  error.reason.startsWith("bad signature")
    ? `${error.message}; or the runner runs another testbed version (this coordinator speaks cluster protocol ${protocolVersion})`
    : error.message
