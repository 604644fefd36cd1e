/**
 * A recording TCP proxy: listens, forwards each connection to the remote (concurrently, binary-safe, with
 * back-pressure both ways), and records it. Client bytes start a command; the server's bytes until the
 * client speaks again are its response. When it stops (after `connections`, or on interruption: SIGINT,
 * SIGTERM) it writes everything recorded so far to `<base>-N.json`, blobs beside it.
 */
import type * as Net from "node:net"
import { Console, Deferred, Effect, Schema } from "effect"
import * as Tcp from "./internal/Tcp.ts"
import * as ScriptWriter from "./ScriptWriter.ts"

export interface RecordOptions {
  readonly listenHost: string
  readonly listenPort: number
  readonly remoteHost: string
  readonly remotePort: number
  /** Output basename: the script is written to `<base>-N.json`. */
  readonly base: string
  /** Stop after this many connections have closed (default: run until interrupted). */
  readonly connections?: number | undefined
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
}

export class RemoteUnreachable extends Schema.TaggedError<RemoteUnreachable>()("RemoteUnreachable", {
  connection: Schema.Int,
  reason: Schema.String
}) {}

interface Recording {
  readonly exchanges: Array<{ command: Array<Uint8Array>; response: Array<Uint8Array> }>
  clientBytes: number
  serverBytes: number
}

/** Forwards both ways until both sides are closed, calling `onClient`/`onServer` with every chunk. */
const pump = (client: Net.Socket, server: Net.Socket, recording: Recording) =>
  Effect.callback<void>((resume) => {
    let current: { command: Array<Uint8Array>; response: Array<Uint8Array> } | undefined
    let open = 2
    const closed = () => {
      if (--open === 0) resume(Effect.void)
    }
    client.on("data", (chunk: Buffer) => {
      if (current === undefined || current.response.length > 0) {
        current = { command: [], response: [] }
        recording.exchanges.push(current)
      }
      current.command.push(chunk)
      recording.clientBytes += chunk.length
      if (!server.write(chunk)) client.pause()
    })
    server.on("data", (chunk: Buffer) => {
      if (current === undefined) {
        current = { command: [], response: [] }
        recording.exchanges.push(current)
      }
      current.response.push(chunk)
      recording.serverBytes += chunk.length
      if (!client.write(chunk)) server.pause()
    })
    server.on("drain", () => client.resume())
    client.on("drain", () => server.resume())
    // Half-closes are forwarded, so a client that sends FIN and then reads the answer still gets it.
    client.on("end", () => server.end())
    server.on("end", () => client.end())
    client.on("error", () => server.resetAndDestroy())
    server.on("error", () => client.resetAndDestroy())
    client.on("close", closed)
    server.on("close", closed)
    return Effect.sync(() => {
      client.destroy()
      server.destroy()
    })
  })

const snapshot = (recording: Recording): ReadonlyArray<ScriptWriter.Exchange> =>
  recording.exchanges.map((e) => ({ command: Buffer.concat(e.command), response: Buffer.concat(e.response) }))

export const record = Effect.fn("RecordProxy.record")(function* (options: RecordOptions) {
  const recordings: Array<Recording> = []
  const allDone = yield* Deferred.make<void>()
  let closedConnections = 0

  const handle = (socket: Net.Socket, index: number) =>
    Effect.scoped(
      Effect.gen(function* () {
        const client = yield* Effect.acquireRelease(Effect.succeed(socket), (s) => Effect.sync(() => s.destroy()))
        const server = yield* Tcp.connect(options.remoteHost, options.remotePort).pipe(
          Effect.tapError((error) => Console.error(`connection ${index}: ${error.message}`)),
          Effect.option
        )
        if (server._tag === "Some") {
          const recording: Recording = { exchanges: [], clientBytes: 0, serverBytes: 0 }
          recordings[index] = recording
          yield* pump(client, server.value, recording)
        } else client.resetAndDestroy()
        closedConnections++
        if (options.connections !== undefined && closedConnections >= options.connections) {
          yield* Deferred.succeed(allDone, undefined)
        }
      })
    )

  // Written however the proxy stops (done, SIGINT/SIGTERM interruption, failure): nothing recorded is lost.
  let result: RecordResult | undefined
  const write = Effect.gen(function* () {
    if (result !== undefined) return result
    const recorded = recordings.filter((r): r is Recording => r !== undefined)
    const exchanges = recorded.reduce((n, r) => n + r.exchanges.length, 0)
    const file = recorded.length === 0 ? undefined : yield* ScriptWriter.write(options.base, recorded.map(snapshot))
    result = {
      file,
      connections: recorded.length,
      exchanges,
      bytesFromClients: recorded.reduce((n, r) => n + r.clientBytes, 0),
      bytesFromServer: recorded.reduce((n, r) => n + r.serverBytes, 0)
    }
    yield* Console.log(
      file === undefined
        ? "No connection recorded; nothing written"
        : `Wrote ${file}: ${result.connections} connection(s), ${exchanges} exchange(s)`
    )
    return result
  })

  yield* Effect.scoped(
    Effect.gen(function* () {
      const listener = yield* Tcp.listen(options.listenHost, options.listenPort, handle)
      if (options.onListening) yield* options.onListening(listener.host, listener.port)
      yield* Deferred.await(allDone)
    })
  ).pipe(Effect.onInterrupt(() => write.pipe(Effect.ignore)))
  return yield* write
})
