/**
 * Loads a script file for replay, refusing at load time what the older tool only found out while running
 * (or never): external paths that leave the script root, cycles of named scripts or of external files,
 * names that do not exist, unknown types and actions, missing or corrupt blobs, `import` of unregistered code.
 */
import * as Path from "node:path"
import { Effect, FileSystem } from "effect"
import { ActionRegistry } from "./Action.ts"
import { BlobStore } from "./BlobStore.ts"
import * as Compile from "./internal/Compile.ts"
import * as Imports from "./internal/Imports.ts"
import { ActionInvalid, ScriptNotFound } from "./internal/LoadErrors.ts"
import * as ResponseBlobs from "./internal/ResponseBlobs.ts"
import * as ScriptFiles from "./internal/ScriptFiles.ts"
import type * as Plan from "./Plan.ts"
import { defaultName, parseFile } from "./Script.ts"

export {
  ActionInvalid,
  type LoadError,
  ScriptCycle,
  ScriptNameNotFound,
  ScriptNotFound,
  ScriptPathEscapes
} from "./internal/LoadErrors.ts"

export interface LoadOptions {
  readonly file: string
  /** The entry to run; `recorded_script` by default. */
  readonly name?: string | undefined
  /** Externals must stay inside this directory; the top-level file's directory by default. */
  readonly root?: string | undefined
  readonly allowOutsideRoot?: boolean | undefined
  /** Lets `import` load a module from a file path (its default export is an ActionModule). */
  readonly allowModulePaths?: boolean | undefined
  /**
   * Runs the modules' cross-step checks on each connection of the entry (default true). Off for fragments that
   * only make sense inside another script (`loadAll` checks every entry's own steps, and cross-step checks only
   * on the default entry).
   */
  readonly moduleChecks?: boolean | undefined
}

export interface LoadedScript {
  readonly file: string
  readonly name: string
  readonly plan: Plan.Plan
  /** Every file read, the top-level one first. */
  readonly files: ReadonlyArray<string>
  /** Names visible from the top-level file (its own first, then those its externals bring). */
  readonly names: ReadonlyArray<string>
  /**
   * The blobs its responses name: their size, and whether their content was verified against the sha1 name
   * (false: a legacy CRC name, accepted unverified).
   */
  readonly blobs: ReadonlyArray<{ readonly name: string; readonly bytes: number; readonly verified: boolean }>
  readonly modules: ReadonlyArray<string>
}

/** The modules' cross-step checks (e.g. a channel used before it is registered), on each connection of the plan. */
const moduleChecks = Effect.fn("ScriptLoader.moduleChecks")(function* (
  registry: ActionRegistry["Service"],
  file: string,
  plan: Plan.Plan
) {
  const connections = plan._tag === "Single" ? [plan.steps] : plan.connections
  for (const steps of connections) {
    const actions = steps.flatMap((step) => (step._tag === "Action" ? [step] : []))
    for (const module of registry.modules.values()) {
      const problem = module.check?.(actions)
      if (problem === undefined) continue
      const step = actions.find((a) => a.path === problem.path)
      return yield* new ActionInvalid({
        file,
        path: problem.path,
        action: step?.action ?? module.name,
        reason: problem.reason
      })
    }
  }
})

/** Reads the top-level file and its externals, within the root. */
const readFiles = Effect.fn("ScriptLoader.readFiles")(function* (options: LoadOptions) {
  const fs = yield* FileSystem.FileSystem
  const topReal = yield* ScriptFiles.realPath(fs, options.file)
  const files: ScriptFiles.Files = {
    fs,
    topDir: yield* ScriptFiles.realPath(fs, Path.dirname(options.file)),
    root: yield* ScriptFiles.realPath(fs, options.root ?? Path.dirname(options.file)),
    allowOutsideRoot: options.allowOutsideRoot === true,
    loaded: new Map(),
    imports: []
  }
  const top = yield* ScriptFiles.loadFile(files, topReal, [])
  return { files, top }
})

export const load = Effect.fn("ScriptLoader.load")(function* (options: LoadOptions) {
  return yield* loadWith(options, ResponseBlobs.make(yield* BlobStore))
})

const loadWith = Effect.fn("ScriptLoader.loadWith")(function* (
  options: LoadOptions,
  blobs: ResponseBlobs.ResponseBlobs
) {
  const registry = yield* ActionRegistry
  const name = options.name ?? defaultName
  const { files, top } = yield* readFiles(options)
  const modules = yield* Imports.resolve(files.imports, registry, options.allowModulePaths === true)
  const compiler: Compile.Compiler = { blobs, modules, used: new Map() }
  const plan = yield* Compile.plan(compiler, yield* Compile.entry(top, name))
  if (options.moduleChecks !== false) yield* moduleChecks(registry, top.display, plan)
  return {
    file: top.display,
    name,
    plan,
    files: [...files.loaded.values()].map((f) => f.display),
    names: [...top.scope.keys()],
    blobs: [...compiler.used.values()].map((blob) => ({ name: blob.name, bytes: blob.size, verified: blob.verified })),
    modules: [...modules.keys()]
  } satisfies LoadedScript
})

/** Loads every entry of the top-level file (what `replay check` does): a broken unused entry is still an error. */
export const loadAll = Effect.fn("ScriptLoader.loadAll")(function* (
  options: Omit<LoadOptions, "name" | "moduleChecks"> & {
    /** The entry whose connections get the modules' cross-step checks; `recorded_script` by default. */
    readonly moduleChecksOn?: string | undefined
  }
) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs
    .readFileString(options.file)
    .pipe(Effect.mapError((error) => new ScriptNotFound({ file: options.file, reason: error.message })))
  const entries = yield* parseFile(options.file, text)
  // One set of blobs for all entries: each is verified once, and memory stays within one load's budget.
  const blobs = ResponseBlobs.make(yield* BlobStore)
  const scripts: Array<LoadedScript> = []
  for (const [n] of entries) {
    const moduleChecks = n === (options.moduleChecksOn ?? defaultName)
    scripts.push(yield* loadWith({ ...options, name: n, moduleChecks }, blobs))
  }
  return scripts
})
