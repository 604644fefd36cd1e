/**
 * Keeps the first `limit` bytes of an output stream and counts the rest, so a command that writes gigabytes
 * costs at most `limit` bytes of memory. Every runner builds `CommandResult.stdout`/`stderr` with it.
 */
export interface OutputCapture {
  readonly push: (bytes: Uint8Array) => void
  /** Bytes seen, kept or not. */
  readonly total: () => number
  readonly truncated: () => boolean
  readonly text: () => string
}

export const make = (limit: number): OutputCapture => {
  const kept: Array<Uint8Array> = []
  let keptBytes = 0
  let total = 0
  return {
    push: (bytes) => {
      total += bytes.length
      const room = limit - keptBytes
      if (room <= 0) return
      // Copy: the source buffer may be pooled and reused by the stream after this chunk.
      const piece = bytes.length <= room ? bytes.slice() : bytes.slice(0, room)
      kept.push(piece)
      keptBytes += piece.length
    },
    total: () => total,
    truncated: () => total > keptBytes,
    text: () => Buffer.concat(kept, keptBytes).toString("utf8")
  }
}
