// Reports are produced as sequences of pieces so that a run of any size can be written without building one
// string (V8 strings stop at about 512 MiB); `concat` joins them for callers that want the whole text.

/** The whole text of a sequence of pieces. */
export const concat = (pieces: Iterable<string>): string => Array.from(pieces).join("")

/** `lines.join("\n")` as pieces. */
export function* joinLines(lines: Iterable<string>): Generator<string> {
  let first = true
  for (const line of lines) {
    yield first ? line : `\n${line}`
    first = false
  }
}
