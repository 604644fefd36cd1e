// The `.env` file beside a compose file, read the way docker compose reads it: `KEY=value` lines, `#` comments,
// an optional `export `, values unquoted (trimmed, ` #…` cut off), in double quotes (\n \t \\ \" escapes) or in
// single quotes (literal). Unquoted and double-quoted values substitute variables defined before them (and the
// environment's); single-quoted ones do not. A value spans one line.
import { interpolateString, type Lookup, type Problem } from "./interpolate.ts"

const keyPattern = /^[A-Za-z_][A-Za-z0-9_.-]*$/

const escapes: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', $: "$$" }

type Value = { readonly text: string; readonly interpolate: boolean } | { readonly error: string }

const doubleQuoted = (raw: string): Value => {
  let text = ""
  for (let i = 1; i < raw.length; i++) {
    const c = raw[i] as string
    if (c === '"') {
      const after = raw.slice(i + 1).trim()
      if (after !== "" && !after.startsWith("#")) return { error: `unexpected text after the closing quote: ${after}` }
      return { text, interpolate: true }
    }
    if (c === "\\" && i + 1 < raw.length) {
      const next = raw[i + 1] as string
      text += escapes[next] ?? `\\${next}`
      i++
    } else text += c
  }
  return { error: "no closing double quote on this line" }
}

const rawValue = (raw: string): Value => {
  if (raw.startsWith('"')) return doubleQuoted(raw)
  if (raw.startsWith("'")) {
    const close = raw.indexOf("'", 1)
    if (close < 0) return { error: "no closing single quote on this line" }
    // Single-quoted text is literal: `$` stays `$`.
    return { text: raw.slice(1, close).replaceAll("$", () => "$$"), interpolate: true }
  }
  const comment = raw.search(/\s#/)
  return { text: (comment < 0 ? raw : raw.slice(0, comment)).trim(), interpolate: true }
}

/**
 * The variables of a `.env` text, in file order; each value may use the environment (`outer`) and the variables
 * defined above it. Problems name the file and line.
 */
export const parse = (
  text: string,
  file: string,
  outer: Lookup,
  problems: Array<Problem>
): ReadonlyMap<string, string> => {
  const vars = new Map<string, string>()
  const lookup: Lookup = (name) => outer(name) ?? vars.get(name)
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim()
    if (trimmed === "" || trimmed.startsWith("#")) return
    const at = `${file}:${index + 1}`
    const body = trimmed.startsWith("export ") ? trimmed.slice(7).trimStart() : trimmed
    const eq = body.indexOf("=")
    const key = (eq < 0 ? body : body.slice(0, eq)).trim()
    if (eq < 0 || !keyPattern.test(key)) {
      problems.push({ path: at, message: "expected KEY=value (KEY: letters, digits, _, . or -)" })
      return
    }
    const value = rawValue(body.slice(eq + 1).trim())
    if ("error" in value) {
      problems.push({ path: at, message: value.error })
      return
    }
    const result = interpolateString(value.text, lookup)
    if ("error" in result) problems.push({ path: at, message: result.error })
    else vars.set(key, result.value)
  })
  return vars
}
