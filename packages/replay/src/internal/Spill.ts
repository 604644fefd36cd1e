// A response too large to keep in memory while it is recorded: its bytes go to a raw temp file as they arrive (the
// blob store compresses and names it when the script is written). Written from the proxy's socket callbacks, so
// writes are plain calls with node's back-pressure (`write` false: wait for `onDrain`), not effects.
import * as Fs from "node:fs"
import { Effect } from "effect"
import { tempBeside } from "./BlobFile.ts"
import { remove } from "./RemoteCache.ts"

export interface Spill {
  readonly path: string
  /** Bytes written so far. */
  readonly size: () => number
  /**
   * False when the file is behind (more than `highWaterMark` waiting): stop the source until `onDrain`. `written`
   * is called once the file is done with the chunk (written, or given up after a failure): its buffer may be reused.
   */
  readonly write: (chunk: Uint8Array, written?: () => void) => boolean
  readonly onDrain: (listener: () => void) => void
  /** No more bytes: the file is flushed and closed in the background. */
  readonly end: () => void
  /** Waits until the file is complete; fails with the reason when a write failed (a full disk…). */
  readonly finished: Effect.Effect<void, string>
  /** Ends and removes the file (a recording that is not kept). */
  readonly discard: Effect.Effect<void>
}

/**
 * What may wait for the disk before the proxy pauses the server: the recording runs beside the forwarding, and a
 * disk that is slower for a moment does not slow the transfer (a bounded tee).
 */
export const highWaterMark = 8 * 1024 * 1024

/** Opens a spill file in `dir` (which must exist), created exclusively. */
export const open = (dir: string): Spill => {
  const path = tempBeside(dir, "recording")
  const file = Fs.createWriteStream(path, { flags: "wx", highWaterMark })
  let size = 0
  let failure: string | undefined
  let closed = false
  const waiters: Array<() => void> = []
  file.on("error", (error) => {
    failure ??= error.message
    // Nothing waits for a drain that will not come: the source resumes, the failure is reported at the end.
    file.emit("drain")
  })
  file.on("close", () => {
    closed = true
    for (const w of waiters.splice(0)) w()
  })
  const finished = Effect.callback<void, string>((resume) => {
    const settle = () => resume(failure === undefined ? Effect.void : Effect.fail(failure))
    if (!file.writableEnded) file.end()
    if (closed) settle()
    else waiters.push(settle)
  })
  return {
    path,
    size: () => size,
    write: (chunk, written) => {
      size += chunk.length
      if (failure !== undefined || file.destroyed) {
        written?.()
        return true
      }
      return file.write(chunk, written)
    },
    onDrain: (listener) => {
      file.once("drain", listener)
    },
    end: () => {
      if (!file.writableEnded) file.end()
    },
    finished,
    discard: Effect.andThen(Effect.ignore(finished), remove(path))
  }
}
