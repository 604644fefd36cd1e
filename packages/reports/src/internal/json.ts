// `JSON.stringify(value, null, 2)` as a sequence of pieces, byte for byte the same text. A summary of a very large
// run is bigger than the longest string V8 can hold (about 512 MiB), so the JSON reports are written piece by piece:
// the outer levels are walked here, anything deeper is stringified whole (one test, one service, one attempt).

const indentOf = (depth: number) => "  ".repeat(depth)

/** How many levels are walked piece by piece; below them a value is small enough to stringify at once. */
const walkedLevels = 4

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !("toJSON" in value)

/** The text of one value at `depth`, as JSON.stringify indents it inside its parents. */
const whole = (value: unknown, depth: number): string | undefined => {
  const json = JSON.stringify(value, null, 2) as string | undefined
  return json === undefined || depth === 0 ? json : json.replaceAll("\n", `\n${indentOf(depth)}`)
}

/**
 * The pieces of `JSON.stringify(value, null, 2)`. Arrays and objects of the first levels are opened here, so no
 * piece holds more than one element of them; the concatenation equals the one-string form exactly.
 */
export function* pieces(value: unknown, depth = 0): Generator<string> {
  if (depth >= walkedLevels) {
    yield whole(value, depth) ?? "null"
    return
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      yield "[]"
      return
    }
    const inner = indentOf(depth + 1)
    yield "["
    for (let i = 0; i < value.length; i++) {
      yield `${i === 0 ? "" : ","}\n${inner}`
      const element: unknown = value[i]
      // JSON.stringify writes `null` for array holes, functions and undefined.
      if (element === undefined || typeof element === "function" || typeof element === "symbol") yield "null"
      else yield* pieces(element, depth + 1)
    }
    yield `\n${indentOf(depth)}]`
    return
  }
  if (isPlainObject(value)) {
    const inner = indentOf(depth + 1)
    let first = true
    for (const key of Object.keys(value)) {
      const member = value[key]
      // JSON.stringify leaves out members it cannot represent.
      if (member === undefined || typeof member === "function" || typeof member === "symbol") continue
      yield `${first ? "{" : ","}\n${inner}${JSON.stringify(key)}: `
      first = false
      yield* pieces(member, depth + 1)
    }
    yield first ? "{}" : `\n${indentOf(depth)}}`
    return
  }
  yield whole(value, depth) ?? "null"
}
