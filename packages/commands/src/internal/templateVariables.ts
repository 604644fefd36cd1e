/**
 * Finds the context paths a nunjucks template reads (`port`, `user.name`), so undefined ones are reported by
 * name before rendering. Names bound inside the template (loop variables, `set`, macro arguments) and the
 * places where "undefined" is asked about on purpose (`is defined`, `| default`) are left out.
 */

interface Node {
  readonly typename: string
  readonly fields: ReadonlyArray<string>
  readonly [field: string]: unknown
}

const isNode = (value: unknown): value is Node =>
  typeof value === "object" && value !== null && typeof (value as { typename?: unknown }).typename === "string"

const globals = new Set(["range", "cycler", "joiner"])
const undefinedTests = new Set(["defined", "undefined", "none", "null"])
const defaultFilters = new Set(["default", "d"])

const symbolName = (node: unknown): string | undefined =>
  isNode(node) && node.typename === "Symbol" ? String(node.value) : undefined

const children = (node: unknown): ReadonlyArray<unknown> =>
  isNode(node) && Array.isArray(node.children) ? (node.children as ReadonlyArray<unknown>) : []

/** Names bound by a `for` target: `x`, or `k, v`. */
const targetNames = (node: unknown): ReadonlyArray<string> => {
  if (Array.isArray(node)) return node.flatMap(targetNames)
  const name = symbolName(node)
  if (name !== undefined) return [name]
  return children(node).flatMap(targetNames)
}

type Walk = (node: unknown, bound: Set<string>) => void
type Found = (path: ReadonlyArray<string>) => void

/** `a.b["c"]`: one path when every key is a literal; a computed key is walked as an expression of its own. */
const lookup = (node: Node, bound: Set<string>, walk: Walk, found: Found): void => {
  const keys: Array<string> = []
  let target: unknown = node
  while (isNode(target) && target.typename === "LookupVal") {
    const key = target.val
    if (isNode(key) && key.typename === "Literal") {
      keys.unshift(String(key.value))
    } else {
      keys.length = 0
      walk(key, bound)
    }
    target = target.target
  }
  const name = symbolName(target)
  if (name !== undefined && keys.length > 0) {
    if (!bound.has(name) && !globals.has(name)) found([name, ...keys])
  } else {
    walk(target, bound)
  }
}

/** A macro binds its name outside and its arguments (and `caller`) inside; default values read the outside. */
const macro = (node: Node, bound: Set<string>, walk: Walk): void => {
  const name = symbolName(node.name)
  if (name !== undefined) bound.add(name)
  const inner = new Set([...bound, "caller"])
  for (const arg of children(node.args)) {
    const argName = symbolName(arg)
    if (argName !== undefined) inner.add(argName)
    else if (isNode(arg) && arg.typename === "KeywordArgs") {
      for (const pair of children(arg)) {
        if (isNode(pair)) {
          walk(pair.value, bound)
          const key = symbolName(pair.key)
          if (key !== undefined) inner.add(key)
        }
      }
    }
  }
  walk(node.body, inner)
}

/** The nodes that read, bind or deliberately ask about a name; any other node is walked field by field. */
const visit = (node: Node, bound: Set<string>, walk: Walk, found: Found): void => {
  switch (node.typename) {
    case "Symbol": {
      const name = String(node.value)
      if (!bound.has(name) && !globals.has(name)) found([name])
      return
    }
    case "LookupVal":
      lookup(node, bound, walk, found)
      return
    case "Filter": {
      const skipFirst = defaultFilters.has(symbolName(node.name) ?? "")
      children(node.args).forEach((arg, index) => {
        if (!(skipFirst && index === 0)) walk(arg, bound)
      })
      return
    }
    case "FunCall": {
      const name = symbolName(node.name)
      if (name === undefined || !globals.has(name)) walk(node.name, bound)
      walk(node.args, bound)
      return
    }
    case "Is": {
      const test = symbolName(node.right) ?? (isNode(node.right) ? symbolName(node.right.name) : undefined)
      if (!undefinedTests.has(test ?? "")) walk(node.left, bound)
      if (isNode(node.right) && node.right.typename === "FunCall") walk(node.right.args, bound)
      return
    }
    case "Pair": {
      if (symbolName(node.key) === undefined) walk(node.key, bound)
      walk(node.value, bound)
      return
    }
    case "For": {
      walk(node.arr, bound)
      walk(node.body, new Set([...bound, "loop", ...targetNames(node.name)]))
      walk(node.else_, bound)
      return
    }
    case "Set": {
      walk(node.value, bound)
      walk(node.body, bound)
      for (const name of targetNames(node.targets)) bound.add(name)
      return
    }
    case "Macro":
      macro(node, bound, walk)
      return
    default:
      for (const field of node.fields) walk(node[field], bound)
  }
}

export const referencedPaths = (root: unknown): ReadonlyArray<ReadonlyArray<string>> => {
  const paths: Array<ReadonlyArray<string>> = []
  const found: Found = (path) => void paths.push(path)
  const walk: Walk = (node, bound) => {
    if (Array.isArray(node)) for (const child of node) walk(child, bound)
    else if (isNode(node)) visit(node, bound, walk, found)
  }
  walk(root, new Set())
  return paths
}
