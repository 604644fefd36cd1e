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
