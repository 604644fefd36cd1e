// TCP for the replay server and the record proxy: listening and connecting with node:net, each socket owned by an
// Effect scope, and the errors of both.
import * as Net from "node:net"
import { Effect, FiberSet, Runtime, Schema, type Scope } from "effect"
import { ExitCode } from "@testbed/events"

export class ListenFailed extends Schema.TaggedError<ListenFailed>()("ListenFailed", {
  host: Schema.String,
  port: Schema.Int,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot listen on ${this.host}:${this.port}: ${this.reason}`
  }
}

export class ConnectFailed extends Schema.TaggedError<ConnectFailed>()("ConnectFailed", {
  host: Schema.String,
  port: Schema.Int,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot connect to ${this.host}:${this.port}: ${this.reason}`
  }
}

/** The peer reset the connection or a write failed: nothing more can be exchanged. */
export class ConnectionLost extends Schema.TaggedError<ConnectionLost>()("ConnectionLost", {
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return `connection lost: ${this.reason}`
  }
}

export interface Listener {
  readonly host: string
  readonly port: number
}

/**
 * Listens until the scope closes; each accepted socket is handed to `handle` in its own fiber (interrupted,
 * with its socket destroyed, when the scope closes). `index` counts accepted connections from 0.
 */
export interface ListenOptions {
  /** Bytes a socket's writes may queue before `write` says to wait (node's default: 16 KiB). */
  readonly highWaterMark?: number | undefined
}

export const listen = Effect.fn("Tcp.listen")(function* <R>(
  host: string,
  port: number,
  handle: (socket: Net.Socket, index: number) => Effect.Effect<void, never, R>,
  options: ListenOptions = {}
) {
  const run = yield* FiberSet.makeRuntime<R>()
  const sockets = new Set<Net.Socket>()
  let accepted = 0
  const server = yield* Effect.acquireRelease(
    Effect.callback<Net.Server, ListenFailed>((resume) => {
      const server = Net.createServer({ noDelay: true, allowHalfOpen: true, ...options }, (socket) => {
        // A peer that resets before its handler listens (a port probe) must not be an unhandled 'error'.
        socket.on("error", () => {})
        sockets.add(socket)
        socket.once("close", () => sockets.delete(socket))
        const index = accepted++
        run(handle(socket, index))
      })
      server.once("error", (error) => resume(Effect.fail(new ListenFailed({ host, port, reason: error.message }))))
      server.listen({ host, port }, () => resume(Effect.succeed(server)))
    }),
    // Not waiting for close(): it would wait for the connections, which the fibers' scopes end after this.
    (server) =>
      Effect.sync(() => {
        server.close()
        for (const socket of sockets) socket.destroy()
      })
  )
  const address = server.address() as Net.AddressInfo
  return { host: address.address, port: address.port }
})

export interface ConnectOptions {
  /** Read into the caller's buffers (no 'data' events). */
  readonly onread?: Net.OnReadOpts | undefined
  /** Connected paused: nothing is read before `resume`. */
  readonly paused?: boolean | undefined
}

/** Opens a client connection for the lifetime of the scope. */
export const connect = (
  host: string,
  port: number,
  options: ConnectOptions = {}
): Effect.Effect<Net.Socket, ConnectFailed, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket, ConnectFailed>((resume) => {
      const socket = Net.connect({
        host,
        port,
        noDelay: true,
        allowHalfOpen: true,
        ...(options.onread === undefined ? {} : { onread: options.onread })
      })
      const onError = (error: Error) => resume(Effect.fail(new ConnectFailed({ host, port, reason: error.message })))
      socket.once("error", onError)
      socket.once("connect", () => {
        socket.off("error", onError)
        // Before node starts reading, which it does right after 'connect'.
        if (options.paused === true) socket.pause()
        resume(Effect.succeed(socket))
      })
      return Effect.sync(() => socket.destroy())
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )
