/**
 * Problems found in a file a user wrote (an experiment, a plugin), each with the path to the offending
 * value, so all of them can be reported at once: `tests[2].services.server.implementation: unknown plugin`.
 */
import { Schema, SchemaIssue } from "effect"

export interface Problem {
  /** Dotted path with [index] for arrays; empty for the whole document. */
  readonly path: string
  readonly message: string
}

export const pathToString = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (out, key) => (typeof key === "number" ? `${out}[${key}]` : out === "" ? String(key) : `${out}.${String(key)}`),
    ""
  )

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** A union member that failed on its contents, not its shape: none of its keys missing, none of the input's extra. */
const fitsShape = (issue: SchemaIssue.Issue): boolean =>
  issue._tag === "Composite" &&
  issue.issues.every(
    (child) => child._tag !== "Pointer" || (child.issue._tag !== "MissingKey" && child.issue._tag !== "UnexpectedKey")
  )

/**
 * When no member of a union matched and exactly one has the input's shape (`- fleet: {…}` is the fleet step), that
 * is the one the writer meant: only its problems are kept, not one list per alternative.
 */
const likelyMeant = (issue: SchemaIssue.Issue): SchemaIssue.Issue => {
  switch (issue._tag) {
    case "AnyOf": {
      const fitting = issue.issues.filter(fitsShape)
      return fitting.length === 1
        ? likelyMeant(fitting[0]!)
        : new SchemaIssue.AnyOf(issue.ast, issue.issues.map(likelyMeant))
    }
    case "Composite": {
      const [first, ...rest] = issue.issues
      return new SchemaIssue.Composite(issue.ast, [likelyMeant(first), ...rest.map(likelyMeant)])
    }
    case "Pointer":
      return new SchemaIssue.Pointer(issue.path, likelyMeant(issue.issue))
    case "Encoding":
      return new SchemaIssue.Encoding(issue.ast, likelyMeant(issue.issue))
    case "Filter":
      return new SchemaIssue.Filter(issue.filter, likelyMeant(issue.issue))
    default:
      return issue
  }
}

/** Every leaf of a schema issue, with its path inside the decoded value. */
const leavesOf = (issue: SchemaIssue.Issue) =>
  formatter(likelyMeant(issue)).issues.map((leaf) => ({
    at: (leaf.path ?? []).map((p) => (typeof p === "object" ? p.key : p)),
    message: leaf.message
  }))

/** Every leaf of a schema issue as a problem, prefixed with `base` (the path of the decoded value). */
export const fromIssue = (issue: SchemaIssue.Issue, base: ReadonlyArray<PropertyKey> = []): ReadonlyArray<Problem> =>
  leavesOf(issue).map((leaf) => ({ path: pathToString([...base, ...leaf.at]), message: leaf.message }))

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
    const leaves = leavesOf(error.error.issue)
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

/** One line per problem, indented; names from the file are sanitized (no escape sequence reaches a terminal). */
export const format = (problems: ReadonlyArray<Problem>): string =>
  problems
    .map((problem) => sanitize(`  ${problem.path === "" ? "(file)" : problem.path}: ${problem.message}`))
    .join("\n")
