// A thin, back-pressured wrapper around an accepted node:net socket. effect/socket hides the half-close and reset
// controls the replay server needs (FIN after a script, RST as a fault), so connections are plain node sockets
// whose lifetime is owned by an Effect scope. Reads are pulled (`take`, `read`, `readWithin`): a chunk waits in a
// queue, bounded by `highWaterMark` (beyond it the socket is paused and TCP back-pressure reaches the sender).
import type * as Net from "node:net"
import { Effect, Option, type Scope } from "effect"
import { ConnectionLost } from "./Tcp.ts"

/** Bytes buffered from the peer before the socket is paused (TCP back-pressure reaches the sender). */
export const highWaterMark = 1024 * 1024

export interface ConnectionOptions {
  /** A write waiting this long for a peer that reads nothing fails with ConnectionLost (default: no bound). */
  readonly writeStallMs?: number | undefined
}

/** What a pull finds: a chunk, the peer's close (None), a lost connection, or nothing yet (undefined). */
export type Next = Option.Option<Uint8Array> | ConnectionLost | undefined

const settle = (next: Option.Option<Uint8Array> | ConnectionLost) =>
  next instanceof ConnectionLost ? Effect.fail(next) : Effect.succeed(next)

export class Connection {
  readonly socket: Net.Socket
  readonly remote: string
  private readonly options: ConnectionOptions
  private readonly queue: Array<Uint8Array> = []
  private queued = 0
  private ended = false
  private failure: string | undefined
  private closed = false
  /** Called (once) when something arrives: a chunk, the end, an error. */
  private waiter: (() => void) | undefined
  private readonly closeWaiters = new Set<() => void>()

  constructor(socket: Net.Socket, options: ConnectionOptions = {}) {
    this.socket = socket
    this.options = options
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`
    socket.on("data", (chunk: Buffer) => this.onData(chunk))
    socket.on("end", () => {
      this.ended = true
      this.wake()
    })
    socket.on("error", (error) => {
      this.failure = error.message
      this.wake()
    })
    socket.on("close", () => this.onClose())
  }

  private onData(chunk: Uint8Array): void {
    this.queue.push(chunk)
    this.queued += chunk.length
    if (this.queued > highWaterMark) this.socket.pause()
    this.wake()
  }

  private onClose(): void {
    this.closed = true
    this.ended = true
    this.wake()
    for (const w of this.closeWaiters) w()
    this.closeWaiters.clear()
  }

  private wake(): void {
    const w = this.waiter
    this.waiter = undefined
    w?.()
  }

  /** The next chunk already received, or undefined (then `ending` says whether more can come). */
  takeChunk(): Uint8Array | undefined {
    const chunk = this.queue.shift()
    if (chunk === undefined) return undefined
    this.queued -= chunk.length
    if (this.queued <= highWaterMark && this.socket.isPaused()) this.socket.resume()
    return chunk
  }

  /** With nothing queued: why no more will come (the peer's close: None; a lost connection), or undefined. */
  ending(): Option.Option<never> | ConnectionLost | undefined {
    if (this.failure !== undefined) return new ConnectionLost({ reason: this.failure })
    if (this.ended) return Option.none()
    return undefined
  }

  /** The next chunk, the peer's close, a lost connection, or undefined when nothing is there yet. */
  take(): Next {
    const chunk = this.takeChunk()
    return chunk === undefined ? this.ending() : Option.some(chunk)
  }

  /** Why the connection failed (a socket error), if it did. */
  failureReason(): string | undefined {
    return this.failure
  }

  /** Calls `listener` once, at the next arrival (a chunk, the end, an error): for readers outside the fiber. */
  whenReadable(listener: (() => void) | undefined): void {
    this.waiter = listener
  }

  /** The next chunk the peer sent, or None once the peer has closed its side. */
  readonly read: Effect.Effect<Option.Option<Uint8Array>, ConnectionLost> = Effect.suspend(() => {
    const now = this.take()
    if (now !== undefined) return settle(now)
    return Effect.callback<Option.Option<Uint8Array>, ConnectionLost>((resume) => {
      this.waiter = () => {
        const next = this.take()
        if (next !== undefined) resume(settle(next))
      }
      return Effect.sync(() => {
        this.waiter = undefined
      })
    })
  })

  /**
   * Like `read`, but None (outer) when nothing came within `millis`. A native timer rather than
   * Effect.timeoutOption: this is on the path of every replayed step.
   */
  readWithin(millis: number): Effect.Effect<Option.Option<Option.Option<Uint8Array>>, ConnectionLost> {
    return Effect.suspend(() => {
      const now = this.take()
      if (now !== undefined) return Effect.map(settle(now), Option.some)
      return Effect.callback<Option.Option<Option.Option<Uint8Array>>, ConnectionLost>((resume) => {
        const timer = setTimeout(() => {
          this.waiter = undefined
          resume(Effect.succeed(Option.none()))
        }, millis)
        this.waiter = () => {
          const next = this.take()
          if (next === undefined) return
          clearTimeout(timer)
          resume(Effect.map(settle(next), Option.some))
        }
        return Effect.sync(() => {
          clearTimeout(timer)
          this.waiter = undefined
        })
      })
    })
  }

  /** Puts bytes back in front of the input (a reader took more than it needed). */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return
    this.queue.unshift(bytes)
    this.queued += bytes.length
  }

  /** Bytes already received and not yet read, without waiting. */
  buffered(): Uint8Array {
    return Buffer.concat(this.queue)
  }

  /** Resolves at once when the socket takes the bytes under its high-water mark, else on 'drain' (back-pressure). */
  write(bytes: Uint8Array): Effect.Effect<void, ConnectionLost> {
    return Effect.suspend(() => {
      if (this.socket.destroyed || this.socket.writableEnded) {
        return Effect.fail(new ConnectionLost({ reason: this.failure ?? "connection closed" }))
      }
      return this.socket.write(bytes) ? Effect.void : this.drained()
    })
  }

  /** Waits for 'drain'; ConnectionLost when the socket closes first, or the peer reads nothing for the stall bound. */
  drained(): Effect.Effect<void, ConnectionLost> {
    return Effect.callback<void, ConnectionLost>((resume) => {
      const { socket } = this
      const stall = this.options.writeStallMs
      const stop = () => {
        clearTimeout(timer)
        socket.off("drain", onDrain)
        socket.off("close", onClose)
      }
      const timer =
        stall === undefined
          ? undefined
          : setTimeout(() => {
              stop()
              resume(Effect.fail(new ConnectionLost({ reason: `the peer read nothing for ${stall} ms` })))
            }, stall)
      const onDrain = () => {
        stop()
        resume(Effect.void)
      }
      const onClose = () => {
        stop()
        resume(Effect.fail(new ConnectionLost({ reason: this.failure ?? "connection closed" })))
      }
      socket.once("drain", onDrain)
      socket.once("close", onClose)
      return Effect.sync(stop)
    })
  }

  /** Sends FIN after pending writes. */
  readonly end: Effect.Effect<void> = Effect.sync(() => {
    if (!this.socket.destroyed) this.socket.end()
  })

  /** Sends RST: the peer sees ECONNRESET. */
  readonly reset: Effect.Effect<void> = Effect.sync(() => {
    if (!this.socket.destroyed) this.socket.resetAndDestroy()
  })

  /** Waits until the socket is fully closed, at most `millis`. */
  awaitClose(millis: number): Effect.Effect<void> {
    if (this.closed) return Effect.void
    return Effect.callback<void>((resume) => {
      const done = () => resume(Effect.void)
      this.closeWaiters.add(done)
      return Effect.sync(() => this.closeWaiters.delete(done))
    }).pipe(Effect.timeoutOption(millis), Effect.asVoid)
  }
}

/** Wraps a socket for the lifetime of the current scope; closing the scope destroys it. */
export const connection = (
  socket: Net.Socket,
  options: ConnectionOptions = {}
): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => new Connection(socket, options)),
    (conn) =>
      Effect.sync(() => {
        if (!conn.socket.destroyed) conn.socket.destroy()
      })
  )
