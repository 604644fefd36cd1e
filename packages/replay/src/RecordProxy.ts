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
import { Console, Deferred, Effect, FileSystem, Runtime, Schema } from "effect"
import { BlobStore, BlobWriteFailed } from "./BlobStore.ts"
import * as Spill from "./internal/Spill.ts"
import * as Tcp from "./internal/Tcp.ts"
import { minBlob } from "./Script.ts"
import * as ScriptWriter from "./ScriptWriter.ts"
import { ExitCode } from "@testbed/events"

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

/** A response longer than this is written to a file as it arrives (the writer puts it in a blob anyway). */
export const spillAt = minBlob
/** Client bytes are stored inline in the script: a command larger than this stops recording its connection. */
export const maxCommandBytes = 16 * 1024 * 1024

interface Exchange {
  readonly command: Array<Uint8Array>
  commandBytes: number
  response: Array<Uint8Array>
  responseBytes: number
  spill: Spill.Spill | undefined
}

interface Recording {
  readonly exchanges: Array<Exchange>
  clientBytes: number
  serverBytes: number
  /** The client closed before either side sent a byte. */
  empty: boolean
  /** Why recording stopped early, if it did. */
  cut: string | undefined
}

const newExchange = (): Exchange => ({ command: [], commandBytes: 0, response: [], responseBytes: 0, spill: undefined })

/** Records one connection's chunks (called beside the forwarding, after each chunk was passed on). */
const recorder = (recording: Recording, spillDir: string, holdServer: (spill: Spill.Spill) => void) => {
  let current: Exchange | undefined
  const endExchange = () => current?.spill?.end()
  return {
    command: (chunk: Uint8Array) => {
      if (recording.cut !== undefined) return
      if (current === undefined || current.responseBytes > 0) {
        endExchange()
        current = newExchange()
        recording.exchanges.push(current)
      }
      if (current.commandBytes + chunk.length > maxCommandBytes) {
        recording.exchanges.pop()
        current = undefined
        recording.cut =
          `the client sent a command of more than ${maxCommandBytes} bytes (commands are stored inline in the ` +
          `script); recorded ${recording.exchanges.length} exchange(s) before it`
        return
      }
      current.command.push(chunk)
      current.commandBytes += chunk.length
    },
    response: (chunk: Uint8Array) => {
      if (recording.cut !== undefined) return
      if (current === undefined) {
        current = newExchange()
        recording.exchanges.push(current)
      }
      current.responseBytes += chunk.length
      if (current.spill === undefined && current.responseBytes > spillAt) {
        const spill = Spill.open(spillDir)
        for (const held of current.response) spill.write(held)
        current.response = []
        current.spill = spill
      }
      if (current.spill === undefined) current.response.push(chunk)
      else if (!current.spill.write(chunk)) holdServer(current.spill)
    },
    end: endExchange
  }
}

/** Forwards both ways until both sides are closed, recording every chunk beside the forwarding. */
const pump = (client: Net.Socket, server: Net.Socket, recording: Recording, spillDir: string) =>
  Effect.callback<void>((resume) => {
    let open = 2
    const closed = () => {
      if (--open === 0) resume(Effect.void)
    }
    // The server is paused while the client or a spill file is behind, and resumes when neither is.
    let clientBehind = false
    let spillBehind = false
    const flow = () => (clientBehind || spillBehind ? server.pause() : server.resume())
    const record = recorder(recording, spillDir, (spill) => {
      spillBehind = true
      flow()
      spill.onDrain(() => {
        spillBehind = false
        flow()
      })
    })
    client.on("data", (chunk: Buffer) => {
      recording.clientBytes += chunk.length
      if (!server.write(chunk)) client.pause()
      record.command(chunk)
    })
    server.on("data", (chunk: Buffer) => {
      recording.serverBytes += chunk.length
      if (!client.write(chunk)) {
        clientBehind = true
        flow()
      }
      record.response(chunk)
    })
    server.on("drain", () => client.resume())
    client.on("drain", () => {
      clientBehind = false
      flow()
    })
    const clientGone = () => {
      if (recording.clientBytes === 0 && recording.serverBytes === 0) recording.empty = true
    }
    // Half-closes are forwarded, so a client that sends FIN and then reads the answer still gets it.
    const onClientEnd = () => {
      clientGone()
      server.end()
    }
    client.on("end", onClientEnd)
    server.on("end", () => client.end())
    client.on("error", () => {
      clientGone()
      server.resetAndDestroy()
    })
    server.on("error", () => client.resetAndDestroy())
    let clientClosed = false
    const onClientClose = () => {
      if (clientClosed) return
      clientClosed = true
      clientGone()
      clientBehind = false
      flow()
      closed()
    }
    client.on("close", onClientClose)
    server.on("close", () => {
      record.end()
      closed()
    })
    // A probe may have closed (its 'end' already emitted, to no one) or reset while the remote was being reached.
    if (client.destroyed) {
      onClientClose()
      server.destroy()
    } else if (client.readableEnded) onClientEnd()
    return Effect.sync(() => {
      client.destroy()
      server.destroy()
    })
  })

const spillFailed = (spill: Spill.Spill) => (reason: string) => new BlobWriteFailed({ path: spill.path, reason })

/** One connection's exchanges for the writer, once its spill files are complete. */
const snapshot = (recording: Recording) =>
  Effect.forEach(recording.exchanges, (e) =>
    Effect.gen(function* () {
      const command = Buffer.concat(e.command)
      if (e.spill === undefined) return { command, response: Buffer.concat(e.response) } as ScriptWriter.Exchange
      yield* e.spill.finished.pipe(Effect.mapError(spillFailed(e.spill)))
      return { command, response: { file: e.spill.path, size: e.spill.size() } } as ScriptWriter.Exchange
    })
  )

const discard = (recording: Recording) =>
  Effect.forEach(recording.exchanges, (e) => (e.spill === undefined ? Effect.void : e.spill.discard), {
    discard: true
  })

export const record = Effect.fn("RecordProxy.record")(function* (options: RecordOptions) {
  const fs = yield* FileSystem.FileSystem
  const blobs = yield* BlobStore
  // Spill files go where their blobs will be (a rename, not a copy, on the same file system).
  yield* fs
    .makeDirectory(blobs.dir, { recursive: true })
    .pipe(Effect.mapError((error) => new BlobWriteFailed({ path: blobs.dir, reason: error.message })))
  const recordings: Array<Recording | undefined> = []
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
          const recording: Recording = { exchanges: [], clientBytes: 0, serverBytes: 0, empty: false, cut: undefined }
          recordings[index] = recording
          yield* pump(client, server.value, recording, blobs.dir)
          if (recording.empty && options.keepEmpty !== true) return
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
    const all = recordings.flatMap((r, connection) => (r === undefined ? [] : [{ r, connection }]))
    const dropped = all.filter(({ r }) => r.empty && options.keepEmpty !== true)
    yield* Effect.forEach(dropped, ({ r }) => discard(r), { discard: true })
    const kept = all.filter((entry) => !dropped.includes(entry))
    const exchanges = kept.reduce((n, { r }) => n + r.exchanges.length, 0)
    const sessions = yield* Effect.forEach(kept, ({ r }) => snapshot(r))
    const file = kept.length === 0 ? undefined : yield* ScriptWriter.write(options.base, sessions)
    result = {
      file,
      connections: kept.length,
      exchanges,
      bytesFromClients: kept.reduce((n, { r }) => n + r.clientBytes, 0),
      bytesFromServer: kept.reduce((n, { r }) => n + r.serverBytes, 0),
      emptyDropped: dropped.length,
      cut: kept.flatMap(({ r, connection }) => (r.cut === undefined ? [] : [{ connection, reason: r.cut }]))
    }
    yield* report(result)
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

const report = (result: RecordResult) =>
  Effect.gen(function* () {
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
