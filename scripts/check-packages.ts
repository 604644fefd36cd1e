// Checks that every workspace package publishes right: it declares each package it imports (a library takes
// `effect` and `@effect/*` as peers, so a consumer holds one copy), declares nothing it does not import, builds
// dist/ before it is packed, and, once built, names no type of its internal modules in its public declarations
// without exporting it. Prints one line per problem and exits 1 when there is any.
//   node_modules/.bin/node scripts/check-packages.ts [--dist]
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { builtinModules } from "node:module"
import { join, relative } from "node:path"

const root = join(import.meta.dirname, "..")

export interface Workspace {
  readonly dir: string
  readonly manifest: {
    readonly name: string
    readonly private?: boolean
    readonly bin?: Record<string, string>
    readonly files?: ReadonlyArray<string>
    readonly scripts?: Record<string, string>
    readonly publishConfig?: { readonly exports?: unknown }
    readonly dependencies?: Record<string, string>
    readonly peerDependencies?: Record<string, string>
    readonly devDependencies?: Record<string, string>
  }
}

/** The publishable packages: packages/* (libraries) and apps/* (the CLI). */
export const workspaces = (): ReadonlyArray<Workspace> =>
  ["packages", "apps"].flatMap((group) =>
    readdirSync(join(root, group))
      .map((name) => join(root, group, name))
      .filter((dir) => existsSync(join(dir, "package.json")))
      .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) }))
  )

const isLibrary = (workspace: Workspace) => workspace.manifest.bin === undefined

const sourceFiles = (dir: string): ReadonlyArray<string> =>
  existsSync(dir)
    ? readdirSync(dir, { recursive: true, encoding: "utf8" })
        .map((file) => join(dir, file))
        .filter((file) => /\.(ts|mts|js|mjs)$/.test(file) && statSync(file).isFile())
    : []

// Import and export declarations start a line (so JSDoc examples, whose lines start with `*`, do not count):
// `import x from`, `import * as x from`, `import { … } from` (over several lines), `export … from`, `import "x"`;
// dynamic imports count anywhere.
const staticImport =
  /^\s*(?:import|export)\s+(?:type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\}|\w+(?:\s*,\s*(?:\{[^}]*\}|\*\s+as\s+\w+))?)\s+from\s*["']([^"'\n]+)["']|^\s*import\s*["']([^"'\n]+)["']/gm
const dynamicImport = /\bimport\(\s*["']([^"'\n]+)["']\s*\)/g

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`), or undefined for relative and builtins. */
export const packageOf = (specifier: string): string | undefined => {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("node:")) return undefined
  const parts = specifier.split("/")
  const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier)
  return builtinModules.includes(name) ? undefined : name
}

/** Every package the given folders of a workspace import (default: the shipped src/ and assets/), with one file that does. */
export const importsOf = (
  workspace: Workspace,
  folders: ReadonlyArray<string> = ["src", "assets"]
): ReadonlyMap<string, string> => {
  const found = new Map<string, string>()
  for (const file of folders.flatMap((folder) => sourceFiles(join(workspace.dir, folder)))) {
    const text = readFileSync(file, "utf8")
    for (const match of [...text.matchAll(staticImport), ...text.matchAll(dynamicImport)]) {
      const name = packageOf(match[1] ?? match[2] ?? "")
      if (name !== undefined && name !== workspace.manifest.name && !found.has(name))
        found.set(name, relative(root, file))
    }
  }
  return found
}

// The workspace root's devDependencies (vitest, @effect/vitest, …) resolve from every package's tests.
const rootDev: Record<string, string> =
  JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies ?? {}

const isEffect = (name: string) => name === "effect" || name.startsWith("@effect/")

/** Problems with what a workspace declares, against what it imports. */
export const dependencyProblems = (workspace: Workspace): ReadonlyArray<string> => {
  const { manifest } = workspace
  const where = relative(root, join(workspace.dir, "package.json"))
  const dependencies = manifest.dependencies ?? {}
  const peers = manifest.peerDependencies ?? {}
  const dev = manifest.devDependencies ?? {}
  const imports = importsOf(workspace)
  const problems: Array<string> = []
  for (const [name, file] of imports) {
    if (!(name in dependencies) && !(name in peers))
      problems.push(`${where}: ${file} imports "${name}", which is neither a dependency nor a peerDependency`)
  }
  // Tests run from the workspace too: what they import must be declared somewhere (a devDependency at least), or a
  // fresh install resolves it only by luck of hoisting.
  for (const [name, file] of importsOf(workspace, ["test"])) {
    if (!(name in dependencies) && !(name in peers) && !(name in dev) && !(name in rootDev) && !imports.has(name))
      problems.push(`${where}: ${file} imports "${name}", which the package does not declare (add a devDependency)`)
  }
  for (const name of [...Object.keys(dependencies), ...Object.keys(peers)]) {
    if (!imports.has(name)) problems.push(`${where}: declares "${name}" but nothing in src/ or assets/ imports it`)
  }
  if (isLibrary(workspace)) {
    for (const name of Object.keys(dependencies).filter(isEffect))
      problems.push(`${where}: "${name}" must be a peerDependency (one copy in a consumer), not a dependency`)
    for (const name of Object.keys(peers).filter((peer) => !(peer in dev)))
      problems.push(`${where}: peerDependency "${name}" needs a devDependency too, for the workspace's own tests`)
  }
  return problems
}

/** Problems with how a workspace is packed: dist/ built by prepack, shipped, and what the manifest points at. */
export const packingProblems = (workspace: Workspace): ReadonlyArray<string> => {
  const { manifest } = workspace
  const where = relative(root, join(workspace.dir, "package.json"))
  const problems: Array<string> = []
  if (manifest.private === true) return problems
  if (!/\btsc\b/.test(manifest.scripts?.prepack ?? ""))
    problems.push(`${where}: needs a "prepack" script that builds dist/ (so a pack never ships without it)`)
  if (!(manifest.files ?? []).includes("dist")) problems.push(`${where}: "files" must include dist`)
  if (isLibrary(workspace)) {
    const targets = JSON.stringify(manifest.publishConfig?.exports ?? {})
    if (!targets.includes("./dist/")) problems.push(`${where}: publishConfig.exports must point into dist/`)
  } else {
    for (const [command, target] of Object.entries(manifest.bin ?? {}))
      if (!target.startsWith("./dist/") || !target.endsWith(".js"))
        problems.push(`${where}: bin "${command}" must be built JavaScript in dist/, not ${target}`)
  }
  return problems
}

const declarationFiles = (dir: string): ReadonlyArray<string> =>
  existsSync(dir)
    ? readdirSync(dir, { recursive: true, encoding: "utf8" })
        .filter((file) => file.endsWith(".d.ts"))
        .map((file) => join(dir, file))
    : []

const isInternal = (file: string) => /(^|\/)internal\//.test(file)

/**
 * Types of internal modules that a public declaration names but no public declaration exports (a consumer
 * cannot import them: `exports` closes `./internal/*`). Needs the built dist/.
 */
export const hiddenTypeProblems = (workspace: Workspace): ReadonlyArray<string> => {
  const dist = join(workspace.dir, "dist")
  const publicFiles = declarationFiles(dist).filter((file) => !isInternal(relative(dist, file)))
  const exported = new Set<string>()
  const named = new Map<string, string>()
  for (const file of publicFiles) {
    const text = readFileSync(file, "utf8")
    for (const match of text.matchAll(/^export (?:type )?\{([^}]*)\} from ["'][^"']*internal\/[^"']*["']/gm))
      for (const name of (match[1] ?? "").split(",")) exported.add(name.replace(/^\s*type\s+/, "").trim())
    // `import("./internal/x.ts").Name`, and names imported from an internal module (then used in the file)
    for (const match of text.matchAll(/import\(["'][^"']*internal\/[^"']*["']\)\.(\w+)/g))
      named.set(match[1] ?? "", relative(root, file))
    for (const match of text.matchAll(/^import (?:type )?\{([^}]*)\} from ["'][^"']*internal\/[^"']*["']/gm))
      for (const name of (match[1] ?? "").split(","))
        named.set(name.replace(/^\s*type\s+/, "").trim(), relative(root, file))
    for (const match of text.matchAll(/^import \* as (\w+) from ["'][^"']*internal\/[^"']*["']/gm)) {
      const uses = text.replace(/^import .*$/gm, "")
      for (const use of uses.matchAll(new RegExp(`\\b${match[1]}\\.(\\w+)`, "g")))
        named.set(use[1] ?? "", relative(root, file))
    }
  }
  return [...named]
    .filter(([name]) => name !== "" && !exported.has(name))
    .map(([name, file]) => `${file}: names ${name} from an internal module, but no public module exports it`)
}

if (import.meta.main) {
  const withDist = process.argv.includes("--dist")
  const problems = workspaces().flatMap((workspace) => [
    ...dependencyProblems(workspace),
    ...packingProblems(workspace),
    ...(withDist ? hiddenTypeProblems(workspace) : [])
  ])
  for (const problem of problems) console.error(problem)
  console.log(problems.length === 0 ? "packages: OK" : `packages: ${problems.length} problem(s)`)
  process.exitCode = problems.length === 0 ? 0 : 1
}
