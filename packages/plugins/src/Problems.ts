/**
 * Problems found in a file a user wrote (an experiment, a plugin), each with the path to the offending
 * value, so all of them can be reported at once: `tests[2].services.server.implementation: unknown plugin`.
 */
import { Schema, SchemaIssue } from "effect"
import { likelyMeant } from "./internal/likelyMeant.ts"

export interface Problem {
  /** Dotted path with [index] for arrays; empty for the whole document. */
  readonly path: string
  readonly message: string
  /** Where the value is in the file (1-based), when the file's text is known. */
  readonly line?: number
  readonly column?: number
}

export const pathToString = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (out, key) => (typeof key === "number" ? `${out}[${key}]` : out === "" ? String(key) : `${out}.${String(key)}`),
    ""
  )

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** Every leaf of a schema issue, with its path inside the decoded value. */
const leavesOf = (issue: SchemaIssue.Issue, input: unknown) =>
  formatter(likelyMeant(issue, input)).issues.map((leaf) => ({
    at: (leaf.path ?? []).map((p) => (typeof p === "object" ? p.key : p)),
    message: leaf.message
  }))

/** Every leaf of a schema issue as a problem, prefixed with `base` (the path of the decoded value). */
export const fromIssue = (
  issue: SchemaIssue.Issue,
  base: ReadonlyArray<PropertyKey> = [],
  /** The value that was decoded: lets a union failure name the member most likely meant. */
  input?: unknown
): ReadonlyArray<Problem> =>
  leavesOf(issue, input).map((leaf) => ({ path: pathToString([...base, ...leaf.at]), message: leaf.message }))

/** Decodes with every problem reported (not only the first) and unknown keys treated as mistakes. */
export const decodeAll = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  input: unknown,
  base: ReadonlyArray<PropertyKey> = []
):
  | { readonly ok: true; readonly value: S["Type"] }
  | {
      readonly ok: false
      readonly problems: ReadonlyArray<Problem>
      /** Where each problem is inside `input` (without `base`), as keys: what a caller may leave out and retry. */
      readonly at: ReadonlyArray<ReadonlyArray<PropertyKey>>
    } => {
  const result = Schema.decodeUnknownExit(schema)(input, { errors: "all", onExcessProperty: "error" })
  if (result._tag === "Success") return { ok: true, value: result.value }
  const error = result.cause.reasons.find((reason) => reason._tag === "Fail")
  if (error !== undefined && Schema.isSchemaError(error.error)) {
    const leaves = leavesOf(error.error.issue, input)
    return {
      ok: false,
      problems: leaves.map((leaf) => ({ path: pathToString([...base, ...leaf.at]), message: leaf.message })),
      at: leaves.map((leaf) => leaf.at)
    }
  }
  return { ok: false, problems: [{ path: pathToString(base), message: String(result.cause) }], at: [[]] }
}

/**
 * Replaces control characters (but tab and newline) by a visible `\xNN`: text from a file (names, values) is
 * safe to write to a terminal, whose escape sequences it could otherwise send.
 */
export const sanitize = (text: string): string =>
  text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
    (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`
  )

/** `file:line:column: ` (the form editors and terminals link to the place), or nothing when the place is unknown. */
const place = (problem: Problem, file: string | undefined): string =>
  problem.line === undefined
    ? ""
    : `${file === undefined ? "line " : `${file}:`}${problem.line}:${problem.column ?? 1}: `

/**
 * One line per problem, indented, with its place in `file` when known; names from the file are sanitized (no
 * escape sequence reaches a terminal).
 */
export const format = (problems: ReadonlyArray<Problem>, file?: string): string =>
  problems
    .map((problem) =>
      sanitize(`  ${place(problem, file)}${problem.path === "" ? "(file)" : problem.path}: ${problem.message}`)
    )
    .join("\n")
