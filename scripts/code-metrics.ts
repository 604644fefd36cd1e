// Code figures for the renovation (issue 16), per package: top-level functions in src longer than 80/100/150 lines,
// emit calls whose event type the compiler does not hold to TestbedEvent, `(args) => Effect.gen(…)` wrappers without
// a span, Math.random and Effect.orDie uses, and the share of test files that run live (processes, sockets,
// containers) rather than as unit tests.
//
// Run: node_modules/.bin/node scripts/code-metrics.ts [ROOT] [--json] [--list]
//   ROOT: a checkout with its node_modules installed (default: this one); --list also names the long functions.
//
// It reads the code with the TypeScript 7 compiler's own API (typescript/unstable/sync: the Go compiler's parser and
// checker behind a synchronous pipe), so lengths come from the syntax tree and the emit figure from the checker.
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { type Expression, type Node, type SourceFile, SyntaxKind } from "typescript/unstable/ast"
import { API, type Checker, type Project } from "typescript/unstable/sync"

const args = process.argv.slice(2)
const root = resolve(args.find((arg) => !arg.startsWith("--")) ?? ".")
const asJson = args.includes("--json")
const listLong = args.includes("--list")
const thresholds = [80, 100, 150] as const

interface LongFunction {
  readonly name: string
  readonly file: string
  readonly lines: number
}

interface PackageFigures {
  readonly name: string
  srcFiles: number
  functions: number
  readonly longFunctions: Array<LongFunction>
  looseEmits: number
  typedEmits: number
  genWithoutSpan: number
  genWithoutSpanExported: number
  mathRandom: number
  orDie: number
  testFiles: number
  liveTestFiles: number
  testClockFiles: number
}

/** The few fields of tsgo's AST nodes this walk reads; each is present on some kinds of node only. */
interface Loose extends Node {
  readonly parent: Loose
  readonly name?: Loose
  readonly expression?: Loose
  readonly initializer?: Loose
  readonly body?: Loose
  readonly text?: string
  readonly arguments?: ReadonlyArray<Loose>
  readonly properties?: ReadonlyArray<Loose>
  readonly members?: ReadonlyArray<Loose>
  readonly modifiers?: ReadonlyArray<Loose>
  readonly declarationList?: { readonly declarations: ReadonlyArray<Loose> }
}

const packagesOf = (): ReadonlyArray<{ readonly name: string; readonly dir: string }> =>
  ["packages", "apps"].flatMap((group) => {
    const dir = join(root, group)
    return readdirSync(dir)
      .filter((name) => statSync(join(dir, name)).isDirectory())
      .map((name) => ({ name: group === "apps" ? `app:${name}` : name, dir: join(dir, name) }))
  })

const filesUnder = (dir: string, suffix: string): ReadonlyArray<string> => {
  let out: Array<string> = []
  let entries: Array<string>
  try {
    entries = readdirSync(dir)
  } catch {
    return out
  }
  for (const entry of entries) {
    if (entry === "node_modules" || entry === "dist") continue
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) out = out.concat(filesUnder(path, suffix))
    else if (path.endsWith(suffix) && !path.endsWith(".d.ts")) out.push(path)
  }
  return out
}

/** 1-based line of a position, by binary search over the file's line starts. */
const lineOf = (starts: ReadonlyArray<number>, position: number): number => {
  let low = 0
  let high = starts.length - 1
  while (low < high) {
    const middle = (low + high + 1) >> 1
    if (starts[middle]! <= position) low = middle
    else high = middle - 1
  }
  return low + 1
}

const linesOf = (node: Node, file: SourceFile, starts: ReadonlyArray<number>): number =>
  lineOf(starts, node.end) - lineOf(starts, node.getStart(file)) + 1

const isFunctionLike = (node: Node): boolean =>
  node.kind === SyntaxKind.ArrowFunction ||
  node.kind === SyntaxKind.FunctionExpression ||
  node.kind === SyntaxKind.FunctionDeclaration ||
  node.kind === SyntaxKind.MethodDeclaration

const containsFunction = (node: Node): boolean =>
  isFunctionLike(node) || node.forEachChild((child) => (containsFunction(child) ? true : undefined)) === true

const hasExport = (node: Loose): boolean => node.modifiers?.some((m) => m.kind === SyntaxKind.ExportKeyword) ?? false

const nameOf = (node: Loose | undefined): string => node?.text ?? node?.getText() ?? "?"

/** Top-level functions of a file: function declarations, consts holding a function, members of top-level classes. */
const topLevelFunctions = (file: SourceFile): ReadonlyArray<{ readonly name: string; readonly node: Node }> => {
  const out: Array<{ name: string; node: Node }> = []
  for (const statement of file.statements as unknown as ReadonlyArray<Loose>) {
    if (statement.kind === SyntaxKind.FunctionDeclaration) out.push({ name: nameOf(statement.name), node: statement })
    else if (statement.kind === SyntaxKind.VariableStatement) {
      const declarations = statement.declarationList?.declarations ?? []
      for (const declaration of declarations) {
        if (declaration.initializer !== undefined && containsFunction(declaration.initializer)) {
          // The whole statement when it declares one name, so its `export const` line counts too.
          const node = declarations.length === 1 ? statement : declaration
          out.push({ name: nameOf(declaration.name), node })
        }
      }
    } else if (statement.kind === SyntaxKind.ClassDeclaration) {
      for (const member of statement.members ?? []) {
        const holdsFunction =
          member.kind === SyntaxKind.MethodDeclaration ||
          (member.kind === SyntaxKind.PropertyDeclaration &&
            member.initializer !== undefined &&
            containsFunction(member.initializer))
        if (holdsFunction) out.push({ name: `${nameOf(statement.name)}.${nameOf(member.name)}`, node: member })
      }
    }
  }
  return out
}

const isEffectMember = (node: Loose, member: string): boolean =>
  node.kind === SyntaxKind.PropertyAccessExpression &&
  nameOf(node.name) === member &&
  node.expression?.kind === SyntaxKind.Identifier &&
  nameOf(node.expression) === "Effect"

/** `Effect.gen(…)`, possibly followed by `.pipe(…)` calls, after parentheses. */
const isEffectGenCall = (node: Loose | undefined): boolean => {
  let current = node
  while (current?.kind === SyntaxKind.ParenthesizedExpression) current = current.expression
  while (
    current?.kind === SyntaxKind.CallExpression &&
    current.expression?.kind === SyntaxKind.PropertyAccessExpression &&
    nameOf(current.expression.name) === "pipe"
  ) {
    current = current.expression.expression
  }
  return (
    current?.kind === SyntaxKind.CallExpression &&
    current.expression !== undefined &&
    isEffectMember(current.expression, "gen")
  )
}

/** A named arrow (a const, a property, a class field) whose body is an `Effect.gen`: effectful, but no span name. */
const genWrapper = (node: Loose): "exported" | "inner" | undefined => {
  if (node.kind !== SyntaxKind.ArrowFunction || !isEffectGenCall(node.body)) return undefined
  const parent = node.parent
  const named =
    parent.kind === SyntaxKind.VariableDeclaration ||
    parent.kind === SyntaxKind.PropertyAssignment ||
    parent.kind === SyntaxKind.PropertyDeclaration
  if (!named) return undefined
  const statement = parent.kind === SyntaxKind.VariableDeclaration ? parent.parent?.parent : undefined
  const exported =
    (statement?.kind === SyntaxKind.VariableStatement &&
      statement.parent?.kind === SyntaxKind.SourceFile &&
      hasExport(statement)) ||
    (parent.kind === SyntaxKind.PropertyDeclaration && parent.parent?.parent?.kind === SyntaxKind.SourceFile)
  return exported ? "exported" : "inner"
}

/**
 * The expression naming the event type of an `emit(…)` call of ours: the `type` of an object literal argument, or a
 * first argument that is text (a producer's own wrapper, `emit("stage.down", …)`). Undefined for anything else (a
 * pass-through such as `bus.emit(input)`, Node's `stream.emit("drain")` is filtered by its declaration).
 */
const emittedType = (call: Loose): Loose | undefined => {
  const [first] = call.arguments ?? []
  if (first === undefined) return undefined
  if (first.kind === SyntaxKind.ObjectLiteralExpression) {
    for (const property of first.properties ?? []) {
      if (nameOf(property.name) !== "type") continue
      if (property.kind === SyntaxKind.PropertyAssignment) return property.initializer
      if (property.kind === SyntaxKind.ShorthandPropertyAssignment) return property.name
    }
    return undefined
  }
  const textual =
    first.kind === SyntaxKind.StringLiteral ||
    first.kind === SyntaxKind.NoSubstitutionTemplateLiteral ||
    first.kind === SyntaxKind.TemplateExpression
  return textual ? first : undefined
}

const calleeName = (call: Loose): string | undefined => {
  const callee = call.expression
  if (callee === undefined) return undefined
  if (callee.kind === SyntaxKind.Identifier) return nameOf(callee)
  if (callee.kind === SyntaxKind.PropertyAccessExpression) return nameOf(callee.name)
  return undefined
}

/** Whether the callee of a call is declared in this repository (not Node's EventEmitter, not a library). */
const declaredHere = (checker: Checker, call: Loose): boolean => {
  const callee = call.expression
  const named = callee?.kind === SyntaxKind.PropertyAccessExpression ? callee.name : callee
  if (named === undefined) return false
  const symbol = checker.getSymbolAtLocation(named)
  const path = symbol?.declarations[0]?.path
  return path !== undefined && !path.includes("/node_modules/")
}

/** Whether the compiler would accept any string where the event type goes: then it is not held to the union. */
const acceptsAnyString = (checker: Checker, expression: Loose): boolean => {
  const contextual = checker.getContextualType(expression as unknown as Expression)
  if (contextual === undefined) return true
  return checker.isTypeAssignableTo(checker.getStringType(), contextual)
}

const walk = (node: Node, visit: (node: Loose) => void): void => {
  visit(node as Loose)
  node.forEachChild((child) => {
    walk(child, visit)
    return undefined
  })
}

const liveTest = (text: string): boolean =>
  /\bit\.live\b|\bit\.live\.|from "node:(child_process|net)"|from "(child_process|net)"|\bexecFile(Sync)?\(|\bspawn(Sync)?\(/.test(
    text
  )

const measure = (project: Project, checker: Checker, pkg: { readonly name: string; readonly dir: string }) => {
  const figures: PackageFigures = {
    name: pkg.name,
    srcFiles: 0,
    functions: 0,
    longFunctions: [],
    looseEmits: 0,
    typedEmits: 0,
    genWithoutSpan: 0,
    genWithoutSpanExported: 0,
    mathRandom: 0,
    orDie: 0,
    testFiles: 0,
    liveTestFiles: 0,
    testClockFiles: 0
  }
  for (const path of filesUnder(join(pkg.dir, "src"), ".ts")) {
    const file = project.program.getSourceFile(path)
    if (file === undefined) throw new Error(`${path} is not in the project of ${project.configFileName}`)
    figures.srcFiles++
    const starts = file.getLineStarts()
    for (const { name, node } of topLevelFunctions(file)) {
      figures.functions++
      const lines = linesOf(node, file, starts)
      if (lines > thresholds[0]) figures.longFunctions.push({ name, file: relative(root, path), lines })
    }
    walk(file, (node) => {
      if (node.kind === SyntaxKind.PropertyAccessExpression) {
        if (nameOf(node.expression) === "Math" && nameOf(node.name) === "random") figures.mathRandom++
        if (isEffectMember(node, "orDie")) figures.orDie++
      }
      const wrapper = genWrapper(node)
      if (wrapper !== undefined) {
        figures.genWithoutSpan++
        if (wrapper === "exported") figures.genWithoutSpanExported++
      }
      if (node.kind === SyntaxKind.CallExpression && calleeName(node) === "emit") {
        const type = emittedType(node)
        if (type !== undefined && declaredHere(checker, node)) {
          if (acceptsAnyString(checker, type)) figures.looseEmits++
          else figures.typedEmits++
        }
      }
    })
  }
  for (const path of filesUnder(join(pkg.dir, "test"), ".test.ts")) {
    const text = readFileSync(path, "utf8")
    figures.testFiles++
    if (liveTest(text)) figures.liveTestFiles++
    if (text.includes("TestClock")) figures.testClockFiles++
  }
  return figures
}

const api = new API({ cwd: root })
const snapshot = api.updateSnapshot({ openProjects: [join(root, "tsconfig.json")] })
const project = snapshot.getProject(join(root, "tsconfig.json")) ?? snapshot.getProjects()[0]
if (project === undefined) throw new Error(`no project for ${join(root, "tsconfig.json")}`)
const all = packagesOf().map((pkg) => measure(project, project.checker, pkg))
api.close()

const count = (figures: PackageFigures, over: number) => figures.longFunctions.filter((f) => f.lines > over).length
const sum = (pick: (figures: PackageFigures) => number) => all.reduce((total, figures) => total + pick(figures), 0)
const percent = (part: number, whole: number) => (whole === 0 ? "-" : `${Math.round((100 * part) / whole)}%`)

if (asJson) {
  console.log(JSON.stringify({ root, packages: all }, null, 2))
} else {
  const header = [
    "package",
    "src files",
    "fns",
    ">80",
    ">100",
    ">150",
    "loose emit",
    "typed emit",
    "gen w/o span (exported)",
    "Math.random",
    "orDie",
    "tests",
    "live",
    "TestClock"
  ]
  const rows = all.map((f) => [
    f.name,
    String(f.srcFiles),
    String(f.functions),
    String(count(f, 80)),
    String(count(f, 100)),
    String(count(f, 150)),
    String(f.looseEmits),
    String(f.typedEmits),
    `${f.genWithoutSpan} (${f.genWithoutSpanExported})`,
    String(f.mathRandom),
    String(f.orDie),
    String(f.testFiles),
    `${f.liveTestFiles} (${percent(f.liveTestFiles, f.testFiles)})`,
    String(f.testClockFiles)
  ])
  rows.push([
    "total",
    String(sum((f) => f.srcFiles)),
    String(sum((f) => f.functions)),
    String(sum((f) => count(f, 80))),
    String(sum((f) => count(f, 100))),
    String(sum((f) => count(f, 150))),
    String(sum((f) => f.looseEmits)),
    String(sum((f) => f.typedEmits)),
    `${sum((f) => f.genWithoutSpan)} (${sum((f) => f.genWithoutSpanExported)})`,
    String(sum((f) => f.mathRandom)),
    String(sum((f) => f.orDie)),
    String(sum((f) => f.testFiles)),
    `${sum((f) => f.liveTestFiles)} (${percent(
      sum((f) => f.liveTestFiles),
      sum((f) => f.testFiles)
    )})`,
    String(sum((f) => f.testClockFiles))
  ])
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join("  ")
  console.log(`code metrics of ${root}`)
  console.log(line(header))
  for (const row of rows) console.log(line(row))
  if (listLong) {
    console.log("\ntop-level functions longer than 80 lines:")
    for (const f of all.flatMap((figures) => figures.longFunctions).sort((a, b) => b.lines - a.lines)) {
      console.log(`  ${String(f.lines).padStart(4)}  ${f.name}  (${f.file})`)
    }
  }
}
