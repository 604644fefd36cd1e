// Forwards one proxied connection both ways until both sides are closed (binary-safe, half-closes passed on,
// back-pressure both ways), handing every chunk to the recorder after it was passed on.
import type * as Net from "node:net"
import { Effect } from "effect"
import { type Lease, ReadPool } from "./ReadPool.ts"
import { type Recording, Recorder } from "./Recording.ts"
import type * as Spill from "./Spill.ts"
import * as Tcp from "./Tcp.ts"

class Pump {
  private readonly client: Net.Socket
  private readonly server: Net.Socket
  private readonly recording: Recording
  private readonly record: Recorder
  private readonly done: () => void
  private readonly reads: ReadPool
  private open = 2
  // The server is paused while the client or a spill file is behind, and resumes when neither is.
  private clientBehind = false
  private spillBehind = false
  private clientClosed = false

  constructor(upstream: Upstream, client: Net.Socket, recording: Recording, spillDir: string, done: () => void) {
    this.client = client
    this.server = upstream.socket
    this.reads = upstream.reads
    this.recording = recording
    this.done = done
    this.record = new Recorder(recording, spillDir, (spill) => this.holdForSpill(spill))
  }

  private flow(): void {
    if (this.clientBehind || this.spillBehind) this.server.pause()
    else this.server.resume()
  }

  private holdForSpill(spill: Spill.Spill): void {
    this.spillBehind = true
    this.flow()
    spill.onDrain(() => {
      this.spillBehind = false
      this.flow()
    })
  }

  private closed(): void {
    if (--this.open === 0) this.done()
  }

  private clientGone(): void {
    if (this.recording.clientBytes === 0 && this.recording.serverBytes === 0) this.recording.empty = true
  }

  // Half-closes are forwarded, so a client that sends FIN and then reads the answer still gets it.
  private onClientEnd(): void {
    this.clientGone()
    this.server.end()
  }

  private onClientClose(): void {
    if (this.clientClosed) return
    this.clientClosed = true
    this.clientGone()
    this.clientBehind = false
    this.flow()
    this.closed()
  }

  private listenClient(): void {
    const { client, server, recording } = this
    client.on("data", (chunk: Buffer) => {
      recording.clientBytes += chunk.length
      if (!server.write(chunk)) client.pause()
      this.record.command(chunk)
    })
    client.on("drain", () => {
      this.clientBehind = false
      this.flow()
    })
    client.on("end", () => this.onClientEnd())
    client.on("error", () => {
      this.clientGone()
      server.resetAndDestroy()
    })
    client.on("close", () => this.onClientClose())
  }

  /** The server's bytes, read into a leased buffer: passed on first, then recorded (the lease ends with both). */
  private onServerChunk(chunk: Buffer, lease: Lease): void {
    const { client, recording } = this
    recording.serverBytes += chunk.length
    if (!client.write(chunk, lease.release)) {
      this.clientBehind = true
      this.flow()
    }
    this.record.response(chunk, lease)
  }

  private listenServer(): void {
    const { client, server } = this
    this.reads.onChunk = (chunk, lease) => this.onServerChunk(chunk, lease)
    server.on("drain", () => client.resume())
    server.on("end", () => client.end())
    server.on("error", () => client.resetAndDestroy())
    server.on("close", () => {
      this.record.end()
      this.closed()
    })
  }

  start(): void {
    this.listenClient()
    this.listenServer()
    // A probe may have closed (its 'end' already emitted, to no one) or reset while the remote was being reached.
    if (this.client.destroyed) {
      this.onClientClose()
      this.server.destroy()
    } else if (this.client.readableEnded) this.onClientEnd()
    // Connected paused (see `connectUpstream`): the server's bytes flow from here on.
    this.flow()
  }
}

/** The connection to the real server: its socket reads into a pool of reused buffers. */
export interface Upstream {
  readonly socket: Net.Socket
  readonly reads: ReadPool
}

/**
 * Connects to the real server for the lifetime of the scope, paused until the pump starts (no byte is read before
 * someone takes it).
 */
export const connectUpstream = Effect.fn("Pump.connectUpstream")(function* (host: string, port: number) {
  const reads = new ReadPool()
  const socket = yield* Tcp.connect(host, port, { onread: reads.onread, paused: true })
  return { socket, reads } satisfies Upstream
})

/** Forwards both ways until both sides are closed, recording every chunk beside the forwarding. */
export const pump = (client: Net.Socket, upstream: Upstream, recording: Recording, spillDir: string) =>
  Effect.callback<void>((resume) => {
    new Pump(upstream, client, recording, spillDir, () => resume(Effect.void)).start()
    return Effect.sync(() => {
      client.destroy()
      upstream.socket.destroy()
    })
  })
