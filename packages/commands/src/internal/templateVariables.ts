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

export const referencedPaths = (root: unknown): ReadonlyArray<ReadonlyArray<string>> => {
  const paths: Array<ReadonlyArray<string>> = []

  const walk = (node: unknown, bound: Set<string>): void => {
    if (Array.isArray(node)) {
      for (const child of node) walk(child, bound)
      return
    }
    if (!isNode(node)) return
    switch (node.typename) {
      case "Symbol": {
        const name = String(node.value)
        if (!bound.has(name) && !globals.has(name)) paths.push([name])
        return
      }
      case "LookupVal": {
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
          if (!bound.has(name) && !globals.has(name)) paths.push([name, ...keys])
        } else {
          walk(target, bound)
        }
        return
      }
      case "Filter": {
        const args = children(node.args)
        const skipFirst = defaultFilters.has(symbolName(node.name) ?? "")
        args.forEach((arg, index) => {
          if (!(skipFirst && index === 0)) walk(arg, bound)
        })
        return
      }
      case "FunCall": {
        if (symbolName(node.name) === undefined) walk(node.name, bound)
        else if (!globals.has(symbolName(node.name) as string)) walk(node.name, bound)
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
      case "Macro": {
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
        return
      }
      default:
        for (const field of node.fields) walk(node[field], bound)
    }
  }

  walk(root, new Set())
  return paths
}
