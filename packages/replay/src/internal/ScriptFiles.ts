// Reads a script file and the external files it includes, each once: the names each file sees (its own first, then
// those its externals bring), and the `import` steps found anywhere. Refuses cycles of externals and paths that
// leave the script root.
import * as Path from "node:path"
import { Effect, FileSystem } from "effect"
import { type Node, parseFile } from "../Script.ts"
import * as External from "./External.ts"
import { type LoadError, ScriptCycle, ScriptNotFound, ScriptPathEscapes } from "./LoadErrors.ts"

export interface LoadedFile {
  readonly path: string
  readonly display: string
  readonly entries: ReadonlyArray<[string, Node]>
  readonly scope: Map<string, { readonly file: LoadedFile; readonly node: Node }>
}

/** An `import` step, resolved once every file is read. */
export interface ImportStep {
  readonly file: LoadedFile
  readonly path: string
  readonly args: ReadonlyArray<unknown>
}

/** The files of one load: where externals may be, and what was read so far. */
export interface Files {
  readonly fs: FileSystem.FileSystem
  /** Real paths. */
  readonly root: string
  readonly topDir: string
  readonly allowOutsideRoot: boolean
  readonly loaded: Map<string, LoadedFile>
  readonly imports: Array<ImportStep>
}

export const realPath = (fs: FileSystem.FileSystem, file: string) =>
  fs.realPath(file).pipe(Effect.mapError((error) => new ScriptNotFound({ file, reason: error.message })))

const walk = (node: Node, path: string, visit: (node: Node, path: string) => void): void => {
  visit(node, path)
  if (node.type === "compound" || node.type === "compound_multi") {
    node.scripts.forEach((child, i) => {
      walk(child, `${path}.scripts[${i}]`, visit)
    })
  }
}

/** The externals of a file (where they appear, what they name); its imports are noted in `files`. */
const scan = (files: Files, file: LoadedFile): ReadonlyArray<{ path: string; target: string }> => {
  const externals: Array<{ path: string; target: string }> = []
  for (const [entry, node] of file.entries) {
    walk(node, entry, (n, path) => {
      if (n.type === "external") externals.push({ path, target: n.file })
      if (n.type === "command" && n.action === "import") files.imports.push({ file, path, args: n.args })
    })
  }
  return externals
}

/** Finds an external inside the root (the including file's directory first, then the top script's). */
const resolveExternal = Effect.fn("ScriptLoader.resolveExternal")(function* (
  files: Files,
  file: LoadedFile,
  external: { path: string; target: string }
) {
  const resolved = yield* External.resolve(external.target, {
    including: file.path,
    topDir: files.topDir,
    root: files.root,
    allowOutsideRoot: files.allowOutsideRoot
  }).pipe(Effect.provideService(FileSystem.FileSystem, files.fs))
  if (resolved._tag === "Escapes") {
    return yield* new ScriptPathEscapes({
      file: file.display,
      path: external.path,
      target: external.target,
      root: files.root
    })
  }
  if (resolved._tag === "Missing") {
    return yield* new ScriptNotFound({
      file: external.target,
      reason: `no such file (the external of ${file.display} at ${external.path}; looked for ${resolved.tried.join(" and ")})`
    })
  }
  return resolved.real
})

const readFile = Effect.fn("ScriptLoader.readFile")(function* (files: Files, real: string) {
  const display = Path.relative(process.cwd(), real) || real
  const text = yield* files.fs
    .readFileString(real)
    .pipe(Effect.mapError((error) => new ScriptNotFound({ file: display, reason: error.message })))
  const entries = yield* parseFile(display, text)
  const file: LoadedFile = { path: real, display, entries, scope: new Map() }
  for (const [entry, node] of entries) file.scope.set(entry, { file, node })
  return file
})

/** Loads the file at a real path and, recursively, its externals; `chain` is the files including it. */
export const loadFile = Effect.fn("ScriptLoader.loadFile")(function* (
  files: Files,
  real: string,
  chain: ReadonlyArray<string>
): Effect.fn.Return<LoadedFile, LoadError> {
  if (chain.includes(real)) {
    return yield* new ScriptCycle({
      kind: "external",
      cycle: [...chain, real].map((f) => Path.relative(files.root, f) || f)
    })
  }
  const cached = files.loaded.get(real)
  if (cached !== undefined) return cached
  const file = yield* readFile(files, real)
  files.loaded.set(real, file)
  for (const external of scan(files, file)) {
    const sub = yield* loadFile(files, yield* resolveExternal(files, file, external), [...chain, real])
    // Local names win; among externals, the first to bring a name wins (as in the older tool).
    for (const [n, v] of sub.scope) if (!file.scope.has(n)) file.scope.set(n, v)
  }
  return file
})
