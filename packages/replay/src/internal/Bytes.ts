// Renders bytes for humans: a window around an offset, as hex and as printable text.

const window = 24

const printable = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : b === 0x0a ? "⏎" : "·")).join("")

/** `hex … | text` of the bytes around `offset` (the differing byte is bracketed in the hex). */
export const render = (bytes: Uint8Array, offset: number): string => {
  if (bytes.length === 0) return "(nothing)"
  const start = Math.max(0, offset - window)
  const end = Math.min(bytes.length, offset + window)
  const slice = bytes.subarray(start, end)
  const hex = Array.from(slice, (b, i) => {
    const h = b.toString(16).padStart(2, "0")
    return start + i === offset ? `[${h}]` : h
  }).join(" ")
  const before = start > 0 ? `…(${start} bytes) ` : ""
  const after = end < bytes.length ? ` …(${bytes.length - end} more)` : ""
  return `${before}${hex}${after} | "${printable(slice)}"`
}

/** Index of the first byte where `a` and `b` differ, comparing up to the shorter length; -1 when equal. */
export const firstDifference = (a: Uint8Array, b: Uint8Array): number => {
  const n = Math.min(a.length, b.length)
  if (Buffer.from(a.buffer, a.byteOffset, n).equals(Buffer.from(b.buffer, b.byteOffset, n))) return -1
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return -1
}
