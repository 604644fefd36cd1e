// Compose variable substitution, as docker compose does it, in one linear pass over each string: `$VAR`, `${VAR}`,
// `${VAR:-default}` / `${VAR-default}` (unset or empty / unset), `${VAR:?message}` / `${VAR?message}` (an error),
// `${VAR:+other}` / `${VAR+other}` (set and non-empty / set), `$$` for a literal `$`, defaults that hold
// substitutions themselves. Unlike compose, an unset variable with no default is an error, not an empty string:
// a bind mount of "" or of "/src" where "$SRC_DIR/src" was meant is worse than a clear message.

/** Where variables come from: the environment, then the `.env` file beside the compose file. */
export type Lookup = (name: string) => string | undefined

export interface Problem {
  readonly path: string
  readonly message: string
}

const nameStart = /[A-Za-z_]/
const namePart = /[A-Za-z0-9_]/

/** Defaults inside defaults are followed this deep, no further. */
const maxNesting = 8

/** What went wrong with one string; returned, never thrown. */
class Failure {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

type Outcome = string | Failure

const readName = (text: string, from: number): string => {
  let end = from
  if (end < text.length && nameStart.test(text[end] as string)) {
    end++
    while (end < text.length && namePart.test(text[end] as string)) end++
  }
  return text.slice(from, end)
}

/** The index of the `}` closing a `${` whose body starts at `from`, counting nested `${…}`. */
const closingBrace = (text: string, from: number): number => {
  let depth = 0
  for (let i = from; i < text.length; i++) {
    const c = text[i]
    if (c === "$" && text[i + 1] === "$") i++
    else if (c === "$" && text[i + 1] === "{") {
      depth++
      i++
    } else if (c === "}") {
      if (depth === 0) return i
      depth--
    }
  }
  return -1
}

const operators = [":-", ":?", ":+", "-", "?", "+"] as const

const unset = (name: string) =>
  new Failure(
    `variable ${name} is not set (set it in the environment or in .env beside the compose file, or give a default: \${${name}:-default})`
  )

/** One `${…}` body: a name, optionally an operator and a word (itself substituted, only when it is used). */
const braced = (body: string, lookup: Lookup, nesting: number): Outcome => {
  const name = readName(body, 0)
  if (name === "") return new Failure(`\${${body}}: expected a variable name after \${`)
  const rest = body.slice(name.length)
  const value = lookup(name)
  if (rest === "") return value ?? unset(name)
  const operator = operators.find((op) => rest.startsWith(op))
  if (operator === undefined) return new Failure(`\${${body}}: unknown form (use :-, -, :?, ?, :+ or +)`)
  const word = () => substitute(rest.slice(operator.length), lookup, nesting + 1)
  const empty = operator.startsWith(":") ? value === undefined || value === "" : value === undefined
  switch (operator) {
    case ":-":
    case "-":
      return empty ? word() : (value as string)
    case ":?":
    case "?": {
      if (!empty) return value as string
      const message = word()
      const detail = message instanceof Failure || message === "" ? "" : `: ${message}`
      return new Failure(`variable ${name} is ${value === undefined ? "not set" : "empty"}${detail}`)
    }
    default:
      return empty ? "" : word()
  }
}

/** One `$…` at `dollar`: what it stands for and where the text goes on. */
const reference = (
  text: string,
  dollar: number,
  lookup: Lookup,
  nesting: number
): { readonly outcome: Outcome; readonly next: number } => {
  const after = text[dollar + 1]
  if (after === "$") return { outcome: "$", next: dollar + 2 }
  if (after === "{") {
    const close = closingBrace(text, dollar + 2)
    if (close < 0) return { outcome: new Failure(`unclosed \${ at character ${dollar + 1}`), next: text.length }
    return { outcome: braced(text.slice(dollar + 2, close), lookup, nesting), next: close + 1 }
  }
  const name = readName(text, dollar + 1)
  if (name === "") {
    return {
      outcome: new Failure(`a lone $ at character ${dollar + 1} (write $$ for a literal $)`),
      next: text.length
    }
  }
  return { outcome: lookup(name) ?? unset(name), next: dollar + 1 + name.length }
}

const substitute = (text: string, lookup: Lookup, nesting: number): Outcome => {
  if (nesting > maxNesting) return new Failure(`substitutions nested more than ${maxNesting} deep`)
  let out = ""
  let i = 0
  while (i < text.length) {
    const dollar = text.indexOf("$", i)
    if (dollar < 0) return out + text.slice(i)
    const { next, outcome } = reference(text, dollar, lookup, nesting)
    if (outcome instanceof Failure) return outcome
    out += text.slice(i, dollar) + outcome
    i = next
  }
  return out
}

/** Substitutes one string; a failure says what is wrong with it. */
export const interpolateString = (
  text: string,
  lookup: Lookup
): { readonly value: string } | { readonly error: string } => {
  const outcome = substitute(text, lookup, 0)
  return outcome instanceof Failure ? { error: outcome.message } : { value: outcome }
}

const formatKey = (at: string, key: string | number) =>
  typeof key === "number" ? `${at}[${key}]` : at === "" ? key : `${at}.${key}`

/**
 * Substitutes every string value of a parsed compose document (keys stay as written, `x-` extension fields are left
 * alone as compose ignores them for us). Every problem is collected with its YAML path.
 */
export const interpolateTree = (value: unknown, lookup: Lookup, problems: Array<Problem>, at = ""): unknown => {
  if (typeof value === "string") {
    const result = interpolateString(value, lookup)
    if ("value" in result) return result.value
    problems.push({ path: at, message: result.error })
    return value
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolateTree(item, lookup, problems, formatKey(at, i)))
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      out[key] = key.startsWith("x-") ? item : interpolateTree(item, lookup, problems, formatKey(at, key))
    }
    return out
  }
  return value
}
