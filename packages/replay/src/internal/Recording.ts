// What the record proxy keeps of one connection, beside the forwarding: client bytes start a command, the server's
// bytes until the client speaks again are its response. A response over `spillAt` goes to a raw file as it arrives.
import { Effect } from "effect"
import { BlobWriteFailed } from "../BlobStore.ts"
import { minBlob } from "../Script.ts"
import type * as ScriptWriter from "../ScriptWriter.ts"
import type { Lease } from "./ReadPool.ts"
import * as Spill from "./Spill.ts"

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

export interface Recording {
  readonly exchanges: Array<Exchange>
  clientBytes: number
  serverBytes: number
  /** The client closed before either side sent a byte. */
  empty: boolean
  /** Why recording stopped early, if it did. */
  cut: string | undefined
}

export const make = (): Recording => ({ exchanges: [], clientBytes: 0, serverBytes: 0, empty: false, cut: undefined })

const newExchange = (): Exchange => ({ command: [], commandBytes: 0, response: [], responseBytes: 0, spill: undefined })

/** Records one connection's chunks (called beside the forwarding, after each chunk was passed on). */
export class Recorder {
  private current: Exchange | undefined
  private readonly recording: Recording
  private readonly spillDir: string
  /** Called when a spill file is behind: the source must wait for its drain. */
  private readonly holdServer: (spill: Spill.Spill) => void

  constructor(recording: Recording, spillDir: string, holdServer: (spill: Spill.Spill) => void) {
    this.recording = recording
    this.spillDir = spillDir
    this.holdServer = holdServer
  }

  private start(): Exchange {
    this.end()
    const exchange = newExchange()
    this.current = exchange
    this.recording.exchanges.push(exchange)
    return exchange
  }

  command(chunk: Uint8Array): void {
    const { recording } = this
    if (recording.cut !== undefined) return
    const current = this.current === undefined || this.current.responseBytes > 0 ? this.start() : this.current
    if (current.commandBytes + chunk.length > maxCommandBytes) {
      recording.exchanges.pop()
      this.current = undefined
      recording.cut =
        `the client sent a command of more than ${maxCommandBytes} bytes (commands are stored inline in the ` +
        `script); recorded ${recording.exchanges.length} exchange(s) before it`
      return
    }
    current.command.push(chunk)
    current.commandBytes += chunk.length
  }

  /**
   * The server's bytes. With a lease the chunk is a view into a read buffer that will be reused: it is copied when
   * kept in memory (at most `spillAt` bytes of a response), and the buffer is retained while its file write is
   * pending (no copy).
   */
  response(chunk: Uint8Array, lease?: Lease): void {
    if (this.recording.cut !== undefined) return
    const current = this.current ?? this.start()
    current.responseBytes += chunk.length
    if (current.spill === undefined && current.responseBytes > spillAt) {
      const spill = Spill.open(this.spillDir)
      for (const held of current.response) spill.write(held)
      current.response = []
      current.spill = spill
    }
    if (current.spill === undefined) {
      current.response.push(lease === undefined ? chunk : Buffer.from(chunk))
      return
    }
    lease?.retain()
    if (!current.spill.write(chunk, lease?.release)) this.holdServer(current.spill)
  }

  /** The current response is complete: its spill file is flushed and closed in the background. */
  end(): void {
    this.current?.spill?.end()
  }
}

const spillFailed = (spill: Spill.Spill) => (reason: string) => new BlobWriteFailed({ path: spill.path, reason })

/** One connection's exchanges for the writer, once its spill files are complete. */
export const snapshot = Effect.fn("RecordProxy.snapshot")(function* (recording: Recording) {
  const exchanges: Array<ScriptWriter.Exchange> = []
  for (const e of recording.exchanges) {
    const command = Buffer.concat(e.command)
    if (e.spill === undefined) {
      exchanges.push({ command, response: Buffer.concat(e.response) })
      continue
    }
    yield* e.spill.finished.pipe(Effect.mapError(spillFailed(e.spill)))
    exchanges.push({ command, response: { file: e.spill.path, size: e.spill.size() } })
  }
  return exchanges
})

/** Removes the spill files of a recording that is not kept. */
export const discard = (recording: Recording): Effect.Effect<void> =>
  Effect.forEach(recording.exchanges, (e) => (e.spill === undefined ? Effect.void : e.spill.discard), {
    discard: true
  })
