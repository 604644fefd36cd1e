/**
 * Keeps the first and the last bytes of an output stream and counts the rest, so a command that writes gigabytes
 * costs at most `limit` bytes of memory, and what it said last (its verdict, its error) is still there. Every
 * runner builds `CommandResult.stdout`/`stderr` with it; the text says where it cut and how much.
 */
export interface OutputCapture {
  readonly push: (bytes: Uint8Array) => void
  /** Bytes seen, kept or not. */
  readonly total: () => number
  readonly truncated: () => boolean
  /** The head, then (when something was left out) a marker line and the tail. */
  readonly text: () => string
}

/** The line put where bytes were left out: says how many, so a reader never mistakes the cut for output. */
export const cutMarker = (omitted: number): string => `\n[testbed: ${omitted} bytes of output left out here]\n`

/** Keeps `limit` bytes: the first half as it came, the last half as a sliding tail. */
export const make = (limit: number): OutputCapture => {
  const headLimit = Math.floor(limit / 2)
  const tailLimit = limit - headLimit
  const head: Array<Uint8Array> = []
  let headBytes = 0
  // The tail: chunks whose total may exceed tailLimit by less than the first chunk; trimmed when read.
  const tail: Array<Uint8Array> = []
  let tailBytes = 0
  let total = 0
  const keepTail = (bytes: Uint8Array) => {
    if (tailLimit === 0 || bytes.length === 0) return
    // Copy: the source buffer may be pooled and reused by the stream after this chunk.
    const piece = bytes.length > tailLimit ? bytes.slice(bytes.length - tailLimit) : bytes.slice()
    tail.push(piece)
    tailBytes += piece.length
    while (tail.length > 1 && tailBytes - tail[0]!.length >= tailLimit) tailBytes -= tail.shift()!.length
  }
  return {
    push: (bytes) => {
      total += bytes.length
      const room = headLimit - headBytes
      if (room > 0) {
        const piece = bytes.length <= room ? bytes.slice() : bytes.slice(0, room)
        head.push(piece)
        headBytes += piece.length
        if (piece.length === bytes.length) return
        keepTail(bytes.subarray(room))
      } else keepTail(bytes)
    },
    total: () => total,
    truncated: () => total > headBytes + Math.min(tailBytes, tailLimit),
    text: () => {
      // Nothing asked for, nothing kept: not even the marker.
      if (limit === 0) return ""
      const kept = Buffer.concat(tail, tailBytes)
      const last = kept.subarray(Math.max(0, kept.length - tailLimit))
      const omitted = total - headBytes - last.length
      const first = Buffer.concat(head, headBytes)
      return omitted > 0
        ? `${first.toString("utf8")}${cutMarker(omitted)}${last.toString("utf8")}`
        : Buffer.concat([first, last]).toString("utf8")
    }
  }
}
