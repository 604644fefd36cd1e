/**
 * Where a problem is in the YAML text: the line and column of the value at a problem's path
 * (`tests[2].services.server.role`), or of the deepest part of that path the file has (a missing key points at
 * its mapping). Problems are then listed in file order, as an editor shows them.
 */
import type { Problems } from "@testbed/plugins"
import * as Yaml from "yaml"

export interface Position {
  /** 1-based. */
  readonly line: number
  /** 1-based. */
  readonly column: number
}

/** The key of `node` that `rest` starts with (the longest: a key may itself contain dots), and its pair. */
const pairFor = (node: Yaml.YAMLMap, rest: string) => {
  let best: { readonly pair: Yaml.Pair; readonly key: string } | undefined
  for (const pair of node.items) {
    const key = Yaml.isScalar(pair.key) ? String(pair.key.value) : undefined
    if (key === undefined || !rest.startsWith(key)) continue
    const next = rest.charAt(key.length)
    if ((next === "" || next === "." || next === "[") && (best === undefined || key.length > best.key.length))
      best = { pair, key }
  }
  return best
}

const start = (node: unknown): number | undefined =>
  Yaml.isNode(node) && node.range !== undefined && node.range !== null ? node.range[0] : undefined

/** The text offset of the value at `path`, or of the deepest node on the way to it. */
const offsetOf = (document: Yaml.Document, path: string): number | undefined => {
  let node: unknown = document.contents
  let at = start(node)
  let rest = path
  while (rest !== "") {
    if (Yaml.isAlias(node)) node = node.resolve(document)
    const index = /^\[(\d+)\]/.exec(rest)
    if (index !== null && Yaml.isSeq(node)) {
      node = node.items[Number(index[1])]
      rest = rest.slice(index[0].length)
    } else if (index === null && Yaml.isMap(node)) {
      const found = pairFor(node, rest)
      if (found === undefined) break
      // A key whose value is missing altogether points at the key.
      at = start(found.pair.key) ?? at
      node = found.pair.value
      rest = rest.slice(found.key.length)
    } else break
    if (node === undefined || node === null) break
    at = start(node) ?? at
    if (rest.startsWith(".")) rest = rest.slice(1)
  }
  return at
}

/** A problem of a parsed YAML document, with the line and column its path points at. */
export const locate =
  (document: Yaml.Document, lines: Yaml.LineCounter) =>
  (problem: Problems.Problem): Problems.Problem => {
    const offset = offsetOf(document, problem.path)
    if (offset === undefined) return problem
    const { line, col } = lines.linePos(offset)
    return { ...problem, line, column: col }
  }

/** The position of a text offset (a YAML syntax error's). */
export const positionAt = (lines: Yaml.LineCounter, offset: number): Position => {
  const { line, col } = lines.linePos(offset)
  return { line, column: col }
}

/** In file order: by line and column, then by path with numbers compared as numbers (`[2]` before `[10]`). */
export const inFileOrder = (problems: ReadonlyArray<Problems.Problem>): ReadonlyArray<Problems.Problem> =>
  [...problems].sort(
    (a, b) =>
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      a.path.localeCompare(b.path, "en", { numeric: true })
  )
