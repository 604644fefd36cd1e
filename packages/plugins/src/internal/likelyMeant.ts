/**
 * When a value in a file matches no member of a union, the problems of the member the writer most likely meant,
 * instead of one list per alternative: by the member with the input's shape, by its discriminating literal
 * (`type: exit_code`), or by the one key that tells the members apart (`run:` of a step), with a "did you mean".
 */
import { SchemaAST, SchemaIssue } from "effect"
import { closest } from "./closest.ts"

type Mapping = Readonly<Record<string, unknown>>

const isMapping = (input: unknown): input is Mapping =>
  typeof input === "object" && input !== null && !Array.isArray(input)

/** A union member that failed on its contents, not its shape: none of its keys missing, none of the input's extra. */
const fitsShape = (issue: SchemaIssue.Issue): boolean =>
  issue._tag === "Composite" &&
  issue.issues.every(
    (child) => child._tag !== "Pointer" || (child.issue._tag !== "MissingKey" && child.issue._tag !== "UnexpectedKey")
  )

const literalOf = (member: SchemaAST.Objects, key: PropertyKey): SchemaAST.LiteralValue | undefined => {
  const property = member.propertySignatures.find((signature) => signature.name === key)
  return property !== undefined && SchemaAST.isLiteral(property.type) ? property.type.literal : undefined
}

/** The key whose literal value tells the members apart (`type` of an assertion), when every member has one. */
const discriminatorOf = (members: ReadonlyArray<SchemaAST.Objects>): string | undefined => {
  const found = members[0]?.propertySignatures.find(
    (signature) =>
      typeof signature.name === "string" && members.every((member) => literalOf(member, signature.name) !== undefined)
  )
  return found === undefined ? undefined : String(found.name)
}

/** The one required key only this member has (`run` of a run step), for every member; else undefined. */
const ownKeysOf = (members: ReadonlyArray<SchemaAST.Objects>): ReadonlyArray<string> | undefined => {
  const keys = members.map((member) => {
    const own = member.propertySignatures.filter(
      (signature) =>
        typeof signature.name === "string" &&
        !SchemaAST.isOptional(signature.type) &&
        members.every((other) => other === member || !other.propertySignatures.some((s) => s.name === signature.name))
    )
    return own.length === 1 ? String(own[0]!.name) : undefined
  })
  return keys.every((key) => key !== undefined) ? (keys as ReadonlyArray<string>) : undefined
}

const hint = (message: string, input: unknown): SchemaIssue.Issue => new SchemaIssue.InvalidValue({ message }, input)

const quoted = (names: ReadonlyArray<string>) => names.map((name) => JSON.stringify(name)).join(", ")

const didYouMean = (name: string, candidates: ReadonlyArray<string>): string => {
  const near = closest(name, candidates)
  return near === undefined ? "" : ` (did you mean ${JSON.stringify(near)}?)`
}

/** `type: exit_codes` matches no member's literal: one problem at `type`, naming the values it can take. */
const byDiscriminator = (
  input: Mapping,
  tag: string,
  members: ReadonlyArray<SchemaAST.Objects>
): SchemaIssue.Issue | undefined => {
  const literals = members.map((member) => String(literalOf(member, tag)))
  const value = input[tag]
  if (value === undefined) return new SchemaIssue.Pointer([tag], hint(`missing: one of ${quoted(literals)}`, input))
  if (literals.includes(String(value))) return undefined
  const near = typeof value === "string" ? didYouMean(value, literals) : ""
  return new SchemaIssue.Pointer(
    [tag],
    hint(`unknown ${tag} ${JSON.stringify(value)}: expected one of ${quoted(literals)}${near}`, value)
  )
}

/** Members told apart by one key each (`wait`, `run`, …): the member whose key the input has, or why none. */
const byOwnKey = (
  issue: SchemaIssue.AnyOf,
  input: Mapping,
  own: ReadonlyArray<string>,
  members: ReadonlyArray<SchemaAST.Objects>
): SchemaIssue.Issue | undefined => {
  const present = own.filter((key) => Object.hasOwn(input, key))
  if (present.length === 1) {
    const member = members[own.indexOf(present[0]!)]
    const meant = issue.issues.find((child) => "ast" in child && child.ast === member)
    return meant === undefined ? undefined : likelyMeant(meant, input)
  }
  if (present.length > 1)
    return hint(`expected one of the keys ${quoted(own)}, found ${quoted(present)}: give one per entry`, input)
  const known = new Set(members.flatMap((member) => member.propertySignatures.map((s) => String(s.name))))
  const unknown = Object.keys(input).filter((key) => !known.has(key))
  const found = unknown.map((key) => `${JSON.stringify(key)}${didYouMean(key, own)}`).join(", ")
  return hint(`expected one of the keys ${quoted(own)}${found === "" ? "" : `, found ${found}`}`, input)
}

/** The union's mapping members, when the input is a mapping and no member fits its shape. */
const guessBranch = (issue: SchemaIssue.AnyOf, input: unknown): SchemaIssue.Issue | undefined => {
  if (!isMapping(input) || issue.issues.some(fitsShape)) return undefined
  const members = issue.ast.types.filter(SchemaAST.isObjects)
  if (members.length < 2) return undefined
  const tag = discriminatorOf(members)
  if (tag !== undefined) return byDiscriminator(input, tag, members)
  const own = ownKeysOf(members)
  return own === undefined ? undefined : byOwnKey(issue, input, own, members)
}

/** A key the mapping does not take (`timout:`): named with the nearest key it does take. */
const unknownKey = (ast: SchemaAST.AST, child: SchemaIssue.Issue): SchemaIssue.Issue | undefined => {
  if (!SchemaAST.isObjects(ast) || child._tag !== "Pointer" || child.issue._tag !== "UnexpectedKey") return undefined
  const key = child.path[child.path.length - 1]
  if (typeof key !== "string") return undefined
  const known = ast.propertySignatures.flatMap((signature) =>
    typeof signature.name === "string" ? [signature.name] : []
  )
  const near = didYouMean(key, known)
  return new SchemaIssue.Pointer(
    child.path,
    hint(near === "" ? `unknown key; expected one of ${quoted(known)}` : `unknown key${near}`, key)
  )
}

/** The value at `path` inside `input` (issues do not always carry their input: the decoded file does). */
const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>(
    (node, key) =>
      typeof node === "object" && node !== null ? (node as Record<PropertyKey, unknown>)[key] : undefined,
    input
  )

/**
 * The issue of decoding `input`, with every union failure narrowed to the member the writer most likely meant;
 * when no member can be picked, each member's problems are still reported.
 */
export const likelyMeant = (issue: SchemaIssue.Issue, input: unknown): SchemaIssue.Issue => {
  const inner = (child: SchemaIssue.Issue) => likelyMeant(child, input)
  switch (issue._tag) {
    case "AnyOf": {
      const guessed = guessBranch(issue, input)
      if (guessed !== undefined) return guessed
      const fitting = issue.issues.filter(fitsShape)
      return fitting.length === 1 ? inner(fitting[0]!) : new SchemaIssue.AnyOf(issue.ast, issue.issues.map(inner))
    }
    case "Composite": {
      const narrow = (child: SchemaIssue.Issue) => unknownKey(issue.ast, child) ?? inner(child)
      const [first, ...rest] = issue.issues
      return new SchemaIssue.Composite(issue.ast, [narrow(first), ...rest.map(narrow)])
    }
    case "Pointer":
      return new SchemaIssue.Pointer(issue.path, likelyMeant(issue.issue, valueAt(input, issue.path)))
    case "Encoding":
      return new SchemaIssue.Encoding(issue.ast, inner(issue.issue))
    case "Filter":
      return new SchemaIssue.Filter(issue.filter, inner(issue.issue))
    default:
      return issue
  }
}
