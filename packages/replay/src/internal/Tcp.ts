/**
 * A thin, back-pressured wrapper around node:net. effect/socket hides the half-close and reset controls
 * the replay server needs (FIN after a script, RST as a fault), so connections are plain node sockets
 * whose lifetime is owned by an Effect scope.
 */
import * as Net from "node:net"
import { Effect, FiberSet, Option, Runtime, Schema, type Scope } from "effect"
import { ExitCode } from "@testbed/events"

/** Bytes buffered from the peer before the socket is paused (TCP back-pressure reaches the sender). */
const highWaterMark = 1024 * 1024

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

export interface Connection {
  readonly socket: Net.Socket
  readonly remote: string
  /** The next chunk the peer sent, or None once the peer has closed its side. */
  readonly read: Effect.Effect<Option.Option<Uint8Array>, ConnectionLost>
  /** Like `read`, but None (outer) when nothing came within `millis`. */
  readonly readWithin: (millis: number) => Effect.Effect<Option.Option<Option.Option<Uint8Array>>, ConnectionLost>
  /** Puts bytes back in front of the input (a reader took more than it needed). */
  readonly unread: (bytes: Uint8Array) => void
  /** Bytes already received and not yet read, without waiting. */
  readonly buffered: () => Uint8Array
  /** Resolves once the kernel has taken the bytes or the buffer drained (back-pressure). */
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, ConnectionLost>
  /** Sends FIN after pending writes. */
  readonly end: Effect.Effect<void>
  /** Sends RST: the peer sees ECONNRESET. */
  readonly reset: Effect.Effect<void>
  /** Waits until the socket is fully closed, at most `millis`. */
  readonly awaitClose: (millis: number) => Effect.Effect<void>
}

export interface ConnectionOptions {
  /** A write waiting this long for a peer that reads nothing fails with ConnectionLost (default: no bound). */
  readonly writeStallMs?: number | undefined
}

const wrap = (socket: Net.Socket, options: ConnectionOptions): Connection => {
  const queue: Array<Uint8Array> = []
  let queued = 0
  let ended = false
  let failure: string | undefined
  let closed = false
  let waiter: (() => void) | undefined
  const closeWaiters = new Set<() => void>()
  const wake = () => {
    const w = waiter
    waiter = undefined
    w?.()
  }
  socket.on("data", (chunk: Buffer) => {
    queue.push(chunk)
    queued += chunk.length
    if (queued > highWaterMark) socket.pause()
    wake()
  })
  socket.on("end", () => {
    ended = true
    wake()
  })
  socket.on("error", (error) => {
    failure = error.message
    wake()
  })
  socket.on("close", () => {
    closed = true
    ended = true
    wake()
    for (const w of closeWaiters) w()
    closeWaiters.clear()
  })
  type Next = Option.Option<Uint8Array> | ConnectionLost | undefined
  const take = (): Next => {
    const chunk = queue.shift()
    if (chunk !== undefined) {
      queued -= chunk.length
      if (queued <= highWaterMark && socket.isPaused()) socket.resume()
      return Option.some(chunk)
    }
    if (failure !== undefined) return new ConnectionLost({ reason: failure })
    if (ended) return Option.none()
    return undefined
  }
  const settle = (next: Option.Option<Uint8Array> | ConnectionLost) =>
    next instanceof ConnectionLost ? Effect.fail(next) : Effect.succeed(next)
  const read: Connection["read"] = Effect.suspend(() => {
    const now = take()
    if (now !== undefined) return settle(now)
    return Effect.callback<Option.Option<Uint8Array>, ConnectionLost>((resume) => {
      waiter = () => {
        const next = take()
        if (next !== undefined) resume(settle(next))
      }
      return Effect.sync(() => {
        waiter = undefined
      })
    })
  })
  // A native timer rather than Effect.timeoutOption: this is on the path of every replayed step.
  const readWithin = (millis: number) =>
    Effect.suspend(() => {
      const now = take()
      if (now !== undefined) return Effect.map(settle(now), Option.some)
      return Effect.callback<Option.Option<Option.Option<Uint8Array>>, ConnectionLost>((resume) => {
        const timer = setTimeout(() => {
          waiter = undefined
          resume(Effect.succeed(Option.none()))
        }, millis)
        waiter = () => {
          const next = take()
          if (next !== undefined) {
            clearTimeout(timer)
            resume(Effect.map(settle(next), Option.some))
          }
        }
        return Effect.sync(() => {
          clearTimeout(timer)
          waiter = undefined
        })
      })
    })
  // Resolves at once when the socket takes the bytes under its high-water mark, else on 'drain' (back-pressure).
  const write = (bytes: Uint8Array) =>
    Effect.suspend(() => {
      if (socket.destroyed || socket.writableEnded) {
        return Effect.fail(new ConnectionLost({ reason: failure ?? "connection closed" }))
      }
      if (socket.write(bytes)) return Effect.void
      return Effect.callback<void, ConnectionLost>((resume) => {
        const stall = options.writeStallMs
        const timer =
          stall === undefined
            ? undefined
            : setTimeout(() => {
                socket.off("drain", onDrain)
                socket.off("close", onClose)
                resume(Effect.fail(new ConnectionLost({ reason: `the peer read nothing for ${stall} ms` })))
              }, stall)
        const onDrain = () => {
          clearTimeout(timer)
          socket.off("close", onClose)
          resume(Effect.void)
        }
        const onClose = () => {
          clearTimeout(timer)
          socket.off("drain", onDrain)
          resume(Effect.fail(new ConnectionLost({ reason: failure ?? "connection closed" })))
        }
        socket.once("drain", onDrain)
        socket.once("close", onClose)
        return Effect.sync(() => {
          clearTimeout(timer)
          socket.off("drain", onDrain)
          socket.off("close", onClose)
        })
      })
    })
  return {
    socket,
    remote: `${socket.remoteAddress}:${socket.remotePort}`,
    read,
    readWithin,
    unread: (bytes) => {
      if (bytes.length === 0) return
      queue.unshift(bytes)
      queued += bytes.length
    },
    buffered: () => Buffer.concat(queue),
    write,
    end: Effect.sync(() => {
      if (!socket.destroyed) socket.end()
    }),
    reset: Effect.sync(() => {
      if (!socket.destroyed) socket.resetAndDestroy()
    }),
    awaitClose: (millis) =>
      closed
        ? Effect.void
        : Effect.callback<void>((resume) => {
            const done = () => resume(Effect.void)
            closeWaiters.add(done)
            return Effect.sync(() => closeWaiters.delete(done))
          }).pipe(Effect.timeoutOption(millis), Effect.asVoid)
  }
}

/** Wraps a socket for the lifetime of the current scope; closing the scope destroys it. */
export const connection = (
  socket: Net.Socket,
  options: ConnectionOptions = {}
): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => wrap(socket, options)),
    (conn) =>
      Effect.sync(() => {
        if (!conn.socket.destroyed) conn.socket.destroy()
      })
  )

export interface Listener {
  readonly host: string
  readonly port: number
}

/**
 * Listens until the scope closes; each accepted socket is handed to `handle` in its own fiber (interrupted,
 * with its socket destroyed, when the scope closes). `index` counts accepted connections from 0.
 */
export const listen = <R>(
  host: string,
  port: number,
  handle: (socket: Net.Socket, index: number) => Effect.Effect<void, never, R>
): Effect.Effect<Listener, ListenFailed, Scope.Scope | R> =>
  Effect.gen(function* () {
    const run = yield* FiberSet.makeRuntime<R>()
    const sockets = new Set<Net.Socket>()
    let accepted = 0
    const server = yield* Effect.acquireRelease(
      Effect.callback<Net.Server, ListenFailed>((resume) => {
        const server = Net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
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

/** Opens a client connection for the lifetime of the scope. */
export const connect = (host: string, port: number): Effect.Effect<Net.Socket, ConnectFailed, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket, ConnectFailed>((resume) => {
      const socket = Net.connect({ host, port, noDelay: true, allowHalfOpen: true })
      const onError = (error: Error) => resume(Effect.fail(new ConnectFailed({ host, port, reason: error.message })))
      socket.once("error", onError)
      socket.once("connect", () => {
        socket.off("error", onError)
        resume(Effect.succeed(socket))
      })
      return Effect.sync(() => socket.destroy())
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )
