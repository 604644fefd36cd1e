/**
 * A recording TCP proxy: listens, forwards each connection to the remote (concurrently, binary-safe, with
 * back-pressure both ways), and records it beside the forwarding. Client bytes start a command; the server's bytes
 * until the client speaks again are its response. Responses over 4 KiB (blobs by the writer's rules) go to files
 * as they arrive, so memory does not grow with the session. A connection in which the client sent nothing and
 * closed before the server said anything (a wait-for-port probe) is dropped unless `keepEmpty`. When it stops
 * (after `connections`, or on interruption: SIGINT, SIGTERM) it writes everything recorded so far to
 * `<base>-N.json`, blobs beside it.
 */
import type * as Net from "node:net"
import * as Path from "node:path"
import { Console, Deferred, Effect, FileSystem, Runtime, Schema } from "effect"
import * as Address from "./Address.ts"
import { BlobStore, BlobWriteFailed } from "./BlobStore.ts"
import { connectUpstream, pump } from "./internal/Pump.ts"
import * as Recording from "./internal/Recording.ts"
import * as Tcp from "./internal/Tcp.ts"
import * as ScriptWriter from "./ScriptWriter.ts"
import { ExitCode } from "@testbed/events"

export { maxCommandBytes, spillAt } from "./internal/Recording.ts"

export interface RecordOptions {
  readonly listenHost: string
  readonly listenPort: number
  readonly remoteHost: string
  readonly remotePort: number
  /** Output basename: the script is written to `<base>-N.json`. */
  readonly base: string
  /** Stop after this many connections have closed (default: run until interrupted). Dropped empty ones do not count. */
  readonly connections?: number | undefined
  /**
   * Keep connections in which the client sent nothing and closed before the server sent anything (a port probe's).
   * Default false: they are dropped, since a replay would expect them.
   */
  readonly keepEmpty?: boolean | undefined
  /** Called once listening, with the bound address (the CLI prints it). */
  readonly onListening?: ((host: string, port: number) => Effect.Effect<void>) | undefined
}

export interface RecordResult {
  /** The written script, or undefined when no connection was recorded. */
  readonly file: string | undefined
  readonly connections: number
  readonly exchanges: number
  readonly bytesFromClients: number
  readonly bytesFromServer: number
  /** Connections dropped because nothing was exchanged (see `keepEmpty`). */
  readonly emptyDropped: number
  /** Connections whose recording stopped early (still forwarded), and why. */
  readonly cut: ReadonlyArray<{ readonly connection: number; readonly reason: string }>
}

export class RemoteUnreachable extends Schema.TaggedError<RemoteUnreachable>()("RemoteUnreachable", {
  connection: Schema.Int,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `connection ${this.connection}: cannot reach the remote server: ${this.reason}`
  }
}

/**
 * What a client's socket may queue before the server is paused: several of the largest reads (1 MiB), so a bulk
 * transfer is not paused and resumed on every read, as it is with node's 16 KiB.
 */
const clientHighWaterMark = 4 * 1024 * 1024

/** One `record` call: its options, where spill files go, and what each accepted connection recorded. */
interface Proxy {
  readonly options: RecordOptions
  readonly spillDir: string
  readonly recordings: Array<Recording.Recording | undefined>
  readonly allDone: Deferred.Deferred<void>
  closedConnections: number
}

const dropsEmpty = (proxy: Proxy, recording: Recording.Recording) => recording.empty && proxy.options.keepEmpty !== true

/** Proxies one accepted connection (reset when the remote cannot be reached) and counts it once closed. */
const connection = Effect.fn("RecordProxy.connection")(function* (proxy: Proxy, socket: Net.Socket, index: number) {
  const { options } = proxy
  const client = yield* Effect.acquireRelease(Effect.succeed(socket), (s) => Effect.sync(() => s.destroy()))
  const server = yield* connectUpstream(options.remoteHost, options.remotePort).pipe(
    Effect.tapError((error) => Console.error(`connection ${index}: ${error.message}`)),
    Effect.option
  )
  if (server._tag === "Some") {
    const recording = Recording.make()
    proxy.recordings[index] = recording
    yield* pump(client, server.value, recording, proxy.spillDir)
    if (dropsEmpty(proxy, recording)) return
  } else client.resetAndDestroy()
  proxy.closedConnections++
  if (options.connections !== undefined && proxy.closedConnections >= options.connections) {
    yield* Deferred.succeed(proxy.allDone, undefined)
  }
})

/** Writes what was recorded (dropping empty connections and their spill files) to `<base>-N.json`. */
const writeRecordings = Effect.fn("RecordProxy.write")(function* (proxy: Proxy) {
  const all = proxy.recordings.flatMap((r, connection) => (r === undefined ? [] : [{ r, connection }]))
  const dropped = all.filter(({ r }) => dropsEmpty(proxy, r))
  yield* Effect.forEach(dropped, ({ r }) => Recording.discard(r), { discard: true })
  const kept = all.filter((entry) => !dropped.includes(entry))
  const sessions = yield* Effect.forEach(kept, ({ r }) => Recording.snapshot(r))
  const file = kept.length === 0 ? undefined : yield* ScriptWriter.write(proxy.options.base, sessions)
  const result: RecordResult = {
    file,
    connections: kept.length,
    exchanges: kept.reduce((n, { r }) => n + r.exchanges.length, 0),
    bytesFromClients: kept.reduce((n, { r }) => n + r.clientBytes, 0),
    bytesFromServer: kept.reduce((n, { r }) => n + r.serverBytes, 0),
    emptyDropped: dropped.length,
    cut: kept.flatMap(({ r, connection }) => (r.cut === undefined ? [] : [{ connection, reason: r.cut }]))
  }
  yield* report(result)
  return result
})

/** Listens until `connections` were recorded (or forever: until interrupted). */
const proxyUntilDone = Effect.fn("RecordProxy.listen")(function* (proxy: Proxy) {
  const { options } = proxy
  const listener = yield* Tcp.listen(
    options.listenHost,
    options.listenPort,
    (socket, index) => Effect.scoped(connection(proxy, socket, index)),
    { highWaterMark: clientHighWaterMark }
  )
  if (options.onListening) yield* options.onListening(listener.host, listener.port)
  yield* Deferred.await(proxy.allDone)
})

export const record = Effect.fn("RecordProxy.record")(function* (options: RecordOptions) {
  const fs = yield* FileSystem.FileSystem
  const blobs = yield* BlobStore
  // Spill files go where their blobs will be (a rename, not a copy, on the same file system).
  yield* fs
    .makeDirectory(blobs.dir, { recursive: true })
    .pipe(Effect.mapError((error) => new BlobWriteFailed({ path: blobs.dir, reason: error.message })))
  const proxy: Proxy = {
    options,
    spillDir: blobs.dir,
    recordings: [],
    allDone: yield* Deferred.make<void>(),
    closedConnections: 0
  }
  // Written however the proxy stops (done, SIGINT/SIGTERM interruption, failure): nothing recorded is lost.
  const write = Effect.cached(writeRecordings(proxy))
  const once = yield* write
  yield* Effect.scoped(proxyUntilDone(proxy)).pipe(Effect.onInterrupt(() => once.pipe(Effect.ignore)))
  return yield* once
})

export interface RecordRequest {
  /** `HOST:PORT` to listen on (`:PORT`, `PORT`: on 127.0.0.1). */
  readonly listen: string
  /** `HOST:PORT` of the real server. */
  readonly remote: string
  /** Output basename: the script goes to `<base>-N.json`, blobs to `blobs/` beside it. */
  readonly output: string
  readonly connections?: number | undefined
  readonly keepEmpty?: boolean | undefined
}

/** `testbed replay record`: addresses as typed, blobs beside the output, the listening line printed. */
export const run = Effect.fn("RecordProxy.run")(function* (request: RecordRequest) {
  const listen = yield* Address.parse(request.listen)
  const remote = yield* Address.parse(request.remote)
  return yield* record({
    listenHost: listen.host,
    listenPort: listen.port,
    remoteHost: remote.host,
    remotePort: remote.port,
    base: request.output,
    connections: request.connections,
    keepEmpty: request.keepEmpty,
    onListening: (host, port) =>
      Console.log(`Recording proxy listening on ${host}:${port}, forwarding to ${remote.host}:${remote.port}`)
  }).pipe(Effect.provide(BlobStore.layer({ dir: Path.join(Path.dirname(request.output), "blobs") })))
})

const report = Effect.fn("RecordProxy.report")(function* (result: RecordResult) {
  for (const { connection, reason } of result.cut) {
    yield* Console.error(`connection ${connection}: recording stopped early: ${reason}`)
  }
  if (result.emptyDropped > 0) {
    yield* Console.log(
      `Dropped ${result.emptyDropped} empty connection(s) (the client closed before a byte was exchanged: a port probe?); --keep-empty keeps them`
    )
  }
  yield* Console.log(
    result.file === undefined
      ? "No connection recorded; nothing written"
      : `Wrote ${result.file}: ${result.connections} connection(s), ${result.exchanges} exchange(s)`
  )
})
