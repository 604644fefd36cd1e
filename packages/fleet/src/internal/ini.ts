// A reader for the subset of Python configparser files the old tools use: sections, `key = value` or
// `key: value`, comment lines, indented continuation lines, a DEFAULT section; keys lower-cased, file order kept.

export type Sections = ReadonlyMap<string, ReadonlyMap<string, string>>

export class IniSyntaxError {
  readonly _tag = "IniSyntaxError"
  readonly line: number
  readonly reason: string
  constructor(line: number, reason: string) {
    this.line = line
    this.reason = reason
  }
}

export const parse = (text: string): Sections | IniSyntaxError => {
  const sections = new Map<string, Map<string, string>>()
  let section: Map<string, string> | undefined
  let lastKey: string | undefined
  const lines = text.split(/\r?\n/)
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index]!
    const trimmed = raw.trim()
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) {
      if (trimmed === "") lastKey = undefined
      continue
    }
    if (/^\s/.test(raw) && section !== undefined && lastKey !== undefined) {
      section.set(lastKey, `${section.get(lastKey)}\n${trimmed}`)
      continue
    }
    const header = /^\[([^\]]+)\]$/.exec(trimmed)
    if (header !== null) {
      const name = header[1]!.trim()
      section = sections.get(name) ?? new Map()
      sections.set(name, section)
      lastKey = undefined
      continue
    }
    if (section === undefined) return new IniSyntaxError(index + 1, "a key before any [section]")
    const separator = /[=:]/.exec(trimmed)
    if (separator === null)
      return new IniSyntaxError(index + 1, `expected "key = value", got ${JSON.stringify(trimmed)}`)
    lastKey = trimmed.slice(0, separator.index).trim().toLowerCase()
    section.set(lastKey, trimmed.slice(separator.index + 1).trim())
  }
  const defaults = sections.get("DEFAULT")
  if (defaults !== undefined) {
    sections.delete("DEFAULT")
    for (const values of sections.values()) {
      for (const [key, value] of defaults) if (!values.has(key)) values.set(key, value)
    }
  }
  return sections
}

/** A value configparser would refuse to interpolate; `reason` is configparser's own message. */
export class InterpolationError {
  readonly _tag = "InterpolationError"
  readonly reason: string
  constructor(reason: string) {
    this.reason = reason
  }
}

/** Python's `repr` of a string, as configparser's error messages quote values. */
const pyRepr = (text: string): string => {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'"
  const escaped = text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")
  return `${quote}${quote === "'" ? escaped.replace(/'/g, "\\'") : escaped}${quote}`
}

/** configparser's MAX_INTERPOLATION_DEPTH. */
const maxDepth = 10
const reference = /^%\(([^)]+)\)s/

/**
 * A value as configparser's default `BasicInterpolation` reads it: `%%` is a literal `%`, `%(name)s` is the value
 * of `name` in the same section (or `[DEFAULT]`, already merged in), itself interpolated, at most 10 levels deep.
 * Anything else after a `%` is an error, with configparser's message.
 */
export const interpolate = (
  section: ReadonlyMap<string, string>,
  sectionName: string,
  option: string
): string | InterpolationError => {
  const raw = section.get(option) ?? ""
  const out: Array<string> = []
  const expand = (rest: string, depth: number): InterpolationError | undefined => {
    if (depth > maxDepth) {
      return new InterpolationError(
        `Recursion limit exceeded in value substitution: option ${pyRepr(option)} in section ${pyRepr(sectionName)} contains an interpolation key which cannot be substituted in ${maxDepth} steps. Raw value: ${pyRepr(raw)}`
      )
    }
    while (rest !== "") {
      const at = rest.indexOf("%")
      if (at < 0) {
        out.push(rest)
        return undefined
      }
      out.push(rest.slice(0, at))
      rest = rest.slice(at)
      const next = rest[1]
      if (next === "%") {
        out.push("%")
        rest = rest.slice(2)
      } else if (next === "(") {
        const match = reference.exec(rest)
        if (match === null) {
          return new InterpolationError(`bad interpolation variable reference ${pyRepr(rest)}`)
        }
        const name = match[1]!.toLowerCase()
        rest = rest.slice(match[0].length)
        const value = section.get(name)
        if (value === undefined) {
          return new InterpolationError(
            `Bad value substitution: option ${pyRepr(option)} in section ${pyRepr(sectionName)} contains an interpolation key ${pyRepr(name)} which is not a valid option name. Raw value: ${pyRepr(raw)}`
          )
        }
        if (value.includes("%")) {
          const failed = expand(value, depth + 1)
          if (failed !== undefined) return failed
        } else out.push(value)
      } else {
        return new InterpolationError(`'%' must be followed by '%' or '(', found: ${pyRepr(rest)}`)
      }
    }
    return undefined
  }
  const failed = expand(raw, 1)
  return failed ?? out.join("")
}
