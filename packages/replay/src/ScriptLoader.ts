/**
 * Loads a script file for replay, refusing at load time what the older tool only found out while running
 * (or never): external paths that leave the script root, cycles of named scripts or of external files,
 * names that do not exist, unknown types and actions, missing or corrupt blobs, `import` of unregistered code.
 */
import * as Path from "node:path"
import * as Url from "node:url"
import { Duration, Effect, FileSystem, Result, Runtime, Schema } from "effect"
import { type ActionArg, ActionRegistry, type ActionModule, isActionModule } from "./Action.ts"
import { type Blob, type BlobError, BlobStore } from "./BlobStore.ts"
import * as External from "./internal/External.ts"
import * as ResponseBlobs from "./internal/ResponseBlobs.ts"
import type * as Plan from "./Plan.ts"
import {
  type CommandStep,
  defaultName,
  type Node,
  parseFile,
  responseField,
  ScriptInvalid,
  type ScriptStep
} from "./Script.ts"
import { ExitCode } from "@testbed/events"

export class ScriptNotFound extends Schema.TaggedError<ScriptNotFound>()("ScriptNotFound", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `cannot read script ${this.file}: ${this.reason}`
  }
}

export class ScriptNameNotFound extends Schema.TaggedError<ScriptNameNotFound>()("ScriptNameNotFound", {
  file: Schema.String,
  path: Schema.String,
  name: Schema.String,
  available: Schema.Array(Schema.String)
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.file}: ${this.path === "" ? "" : `at ${this.path}: `}no script named "${this.name}" (names: ${this.available.join(", ") || "none"})`
  }
}

/** Named scripts (or external files) that lead back to themselves: the chain, spelled out. */
export class ScriptCycle extends Schema.TaggedError<ScriptCycle>()("ScriptCycle", {
  kind: Schema.Literals(["named", "external"]),
  cycle: Schema.Array(Schema.String)
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `cycle of ${this.kind} scripts: ${this.cycle.join(" -> ")}`
  }
}

export class ScriptPathEscapes extends Schema.TaggedError<ScriptPathEscapes>()("ScriptPathEscapes", {
  file: Schema.String,
  path: Schema.String,
  target: Schema.String,
  root: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.file}: at ${this.path}: external file ${this.target} is outside the script root ${this.root} (allow with --allow-outside-root)`
  }
}

export class ActionInvalid extends Schema.TaggedError<ActionInvalid>()("ActionInvalid", {
  file: Schema.String,
  path: Schema.String,
  action: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.file}: at ${this.path}: action "${this.action}": ${this.reason}`
  }
}

export type LoadError =
  | ScriptInvalid
  | ScriptNotFound
  | ScriptNameNotFound
  | ScriptCycle
  | ScriptPathEscapes
  | ActionInvalid
  | BlobError

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

interface LoadedFile {
  readonly path: string
  readonly display: string
  readonly entries: ReadonlyArray<[string, Node]>
  readonly scope: Map<string, { readonly file: LoadedFile; readonly node: Node }>
}

const walk = (node: Node, path: string, visit: (node: Node, path: string) => void): void => {
  visit(node, path)
  if (node.type === "compound" || node.type === "compound_multi") {
    node.scripts.forEach((child, i) => {
      walk(child, `${path}.scripts[${i}]`, visit)
    })
  }
}

const utf8 = new TextEncoder()

export const load = Effect.fn("ScriptLoader.load")(function* (options: LoadOptions) {
  return yield* loadWith(options, ResponseBlobs.make(yield* BlobStore))
})

const loadWith = Effect.fn("ScriptLoader.loadWith")(function* (
  options: LoadOptions,
  blobs: ResponseBlobs.ResponseBlobs
) {
  const fs = yield* FileSystem.FileSystem
  const registry = yield* ActionRegistry
  const name = options.name ?? defaultName
  const realPath = (file: string) =>
    fs.realPath(file).pipe(Effect.mapError((error) => new ScriptNotFound({ file, reason: error.message })))
  const topReal = yield* realPath(options.file)
  const topDir = yield* realPath(Path.dirname(options.file))
  const root = yield* realPath(options.root ?? Path.dirname(options.file))
  const files = new Map<string, LoadedFile>()
  const imports: Array<{ file: LoadedFile; path: string; args: ReadonlyArray<unknown> }> = []

  const loadFile = (real: string, chain: ReadonlyArray<string>): Effect.Effect<LoadedFile, LoadError> =>
    Effect.gen(function* () {
      if (chain.includes(real)) {
        return yield* new ScriptCycle({
          kind: "external",
          cycle: [...chain, real].map((f) => Path.relative(root, f) || f)
        })
      }
      const cached = files.get(real)
      if (cached !== undefined) return cached
      const display = Path.relative(process.cwd(), real) || real
      const text = yield* fs
        .readFileString(real)
        .pipe(Effect.mapError((error) => new ScriptNotFound({ file: display, reason: error.message })))
      const entries = yield* parseFile(display, text)
      const file: LoadedFile = { path: real, display, entries, scope: new Map() }
      files.set(real, file)
      for (const [entry, node] of entries) file.scope.set(entry, { file, node })
      const externals: Array<{ path: string; target: string }> = []
      for (const [entry, node] of entries) {
        walk(node, entry, (n, path) => {
          if (n.type === "external") externals.push({ path, target: n.file })
          if (n.type === "command" && n.action === "import") imports.push({ file, path, args: n.args })
        })
      }
      for (const external of externals) {
        const resolved = yield* External.resolve(external.target, {
          including: real,
          topDir,
          root,
          allowOutsideRoot: options.allowOutsideRoot === true
        }).pipe(Effect.provideService(FileSystem.FileSystem, fs))
        if (resolved._tag === "Escapes") {
          return yield* new ScriptPathEscapes({ file: display, path: external.path, target: external.target, root })
        }
        if (resolved._tag === "Missing") {
          return yield* new ScriptNotFound({
            file: external.target,
            reason: `no such file (the external of ${display} at ${external.path}; looked for ${resolved.tried.join(" and ")})`
          })
        }
        const sub = yield* loadFile(resolved.real, [...chain, real])
        // Local names win; among externals, the first to bring a name wins (as in the older tool).
        for (const [n, v] of sub.scope) if (!file.scope.has(n)) file.scope.set(n, v)
      }
      return file
    })

  const top = yield* loadFile(topReal, [])

  // Imports first, wherever they are: a module's actions are valid in every file once imported.
  const modules = new Map<string, ActionModule>()
  for (const imp of imports) {
    const invalid = (reason: string) =>
      new ActionInvalid({ file: imp.file.display, path: imp.path, action: "import", reason })
    const [moduleName] = imp.args
    if (imp.args.length !== 1 || typeof moduleName !== "string") return yield* invalid("takes one module name")
    const registered = registry.modules.get(moduleName)
    if (registered !== undefined) {
      modules.set(moduleName, registered)
      continue
    }
    const looksLikePath = moduleName.includes("/") || /\.[cm]?[jt]s$/.test(moduleName)
    if (!looksLikePath) {
      const known = [...registry.modules.keys()].join(", ") || "none"
      return yield* invalid(`module "${moduleName}" is not registered (registered: ${known})`)
    }
    if (!options.allowModulePaths) {
      return yield* invalid(`loading code from a path needs --allow-module-path ("${moduleName}")`)
    }
    const url = Url.pathToFileURL(Path.resolve(Path.dirname(imp.file.path), moduleName)).href
    const loaded = yield* Effect.tryPromise({
      try: () => import(url) as Promise<{ default?: unknown }>,
      catch: (error) => invalid(`cannot load ${moduleName}: ${String(error)}`)
    })
    if (!isActionModule(loaded.default))
      return yield* invalid(`${moduleName} has no default export that is an ActionModule`)
    modules.set(loaded.default.name, loaded.default)
  }

  const used = new Map<string, Blob>()
  /** The response of a step: bytes, or (a large blob) the blob, served from its file. */
  const response = (file: LoadedFile, path: string, node: ScriptStep | CommandStep) =>
    Effect.gen(function* () {
      const source = responseField(node)
      if (source === undefined) return undefined
      if (source._tag === "Text") return utf8.encode(source.text)
      if (source._tag === "Blob") {
        const blob = yield* blobs.response(source.name)
        used.set(blob.name, blob)
        return blob.bytes ?? blob
      }
      if (!/^([0-9a-fA-F]{2})*$/.test(source.hex)) {
        return yield* new ScriptInvalid({ file: file.display, path: `${path}.response_hex`, reason: "not hex" })
      }
      return new Uint8Array(Buffer.from(source.hex, "hex"))
    })

  /** The response of a command step, as the bytes its action gets. */
  const actionBytes = (file: LoadedFile, path: string, node: CommandStep) =>
    Effect.gen(function* () {
      const source = responseField(node)
      if (source?._tag !== "Blob") return (yield* response(file, path, node)) as Uint8Array | undefined
      const { blob, bytes } = yield* blobs.bytes(source.name)
      used.set(blob.name, blob)
      if (bytes === undefined) {
        return yield* new ActionInvalid({
          file: file.display,
          path,
          action: node.action,
          reason: `its response blob ${blob.name} is ${blob.size} bytes; an action gets at most ${ResponseBlobs.maxActionBytes}`
        })
      }
      return bytes
    })

  const compile = (
    node: Node,
    file: LoadedFile,
    path: string,
    stack: ReadonlyArray<string>,
    out: Array<Plan.Step>
  ): Effect.Effect<void, LoadError> =>
    Effect.gen(function* () {
      switch (node.type) {
        case "script": {
          if (node.command === undefined && !/^([0-9a-fA-F]{2})*$/.test(node.command_hex ?? "")) {
            return yield* new ScriptInvalid({ file: file.display, path: `${path}.command_hex`, reason: "not hex" })
          }
          const command =
            node.command !== undefined
              ? utf8.encode(node.command)
              : new Uint8Array(Buffer.from(node.command_hex!, "hex"))
          const bytes = (yield* response(file, path, node)) ?? new Uint8Array(0)
          out.push({ _tag: "Exchange", path, command, response: bytes, fault: node.fault })
          return
        }
        case "compound":
          for (let i = 0; i < node.scripts.length; i++) {
            yield* compile(node.scripts[i]!, file, `${path}.scripts[${i}]`, stack, out)
          }
          return
        case "compound_multi":
          return yield* new ScriptInvalid({
            file: file.display,
            path,
            reason: "compound_multi can only be the script that is run (each sub-script is one connection)"
          })
        case "named": {
          const key = `${file.display}#${node.name}`
          if (stack.includes(key)) {
            const names = [...stack.slice(stack.indexOf(key)), key].map((k) => k.slice(k.indexOf("#") + 1))
            return yield* new ScriptCycle({ kind: "named", cycle: names })
          }
          const target = file.scope.get(node.name)
          if (target === undefined) {
            return yield* new ScriptNameNotFound({
              file: file.display,
              path,
              name: node.name,
              available: [...file.scope.keys()]
            })
          }
          return yield* compile(target.node, target.file, `${path} -> ${node.name}`, [...stack, key], out)
        }
        case "command": {
          const invalid = (reason: string) =>
            new ActionInvalid({ file: file.display, path, action: node.action, reason })
          if (node.action === "import") return
          if (node.action === "sleep") {
            const [seconds] = node.args
            const value = typeof seconds === "number" ? seconds : typeof seconds === "string" ? Number(seconds) : NaN
            if (node.args.length !== 1 || !Number.isFinite(value) || value < 0) {
              return yield* invalid("sleep takes one number of seconds")
            }
            out.push({ _tag: "Sleep", path, duration: Duration.millis(value * 1000) })
            return
          }
          const dot = node.action.indexOf(".")
          if (dot < 0) return yield* invalid("unknown action (built in: sleep, import; others are <module>.<action>)")
          const module = modules.get(node.action.slice(0, dot))
          if (module === undefined) {
            return yield* invalid(`module "${node.action.slice(0, dot)}" is not imported by the script`)
          }
          const extra = yield* actionBytes(file, path, node)
          const args: ReadonlyArray<ActionArg> = extra === undefined ? node.args : [...node.args, extra]
          const prepared = module.prepare(node.action.slice(dot + 1), args)
          if (Result.isFailure(prepared)) return yield* invalid(prepared.failure)
          out.push({ _tag: "Action", path, action: node.action, prepared: prepared.success })
          return
        }
        default:
          return
      }
    })

  // The entry may be reached through named indirections; a compound_multi at the end of them is the plan.
  let entry = top.scope.get(name)
  let entryPath = name
  const seen: Array<string> = [`${top.display}#${name}`]
  if (entry === undefined) {
    return yield* new ScriptNameNotFound({ file: top.display, path: "", name, available: [...top.scope.keys()] })
  }
  while (entry.node.type === "named") {
    const next: string = entry.node.name
    const key = `${entry.file.display}#${next}`
    if (seen.includes(key)) {
      return yield* new ScriptCycle({
        kind: "named",
        cycle: [...seen.slice(seen.indexOf(key)), key].map((k) => k.slice(k.indexOf("#") + 1))
      })
    }
    seen.push(key)
    const target = entry.file.scope.get(next)
    if (target === undefined) {
      return yield* new ScriptNameNotFound({
        file: entry.file.display,
        path: entryPath,
        name: next,
        available: [...entry.file.scope.keys()]
      })
    }
    entryPath = `${entryPath} -> ${next}`
    entry = target
  }
  let plan: Plan.Plan
  if (entry.node.type === "compound_multi") {
    const connections: Array<Array<Plan.Step>> = []
    for (let i = 0; i < entry.node.scripts.length; i++) {
      const steps: Array<Plan.Step> = []
      yield* compile(entry.node.scripts[i]!, entry.file, `${entryPath}.scripts[${i}]`, seen, steps)
      connections.push(steps)
    }
    plan = { _tag: "Multi", connections }
  } else {
    const steps: Array<Plan.Step> = []
    yield* compile(entry.node, entry.file, entryPath, seen, steps)
    plan = { _tag: "Single", steps }
  }
  if (options.moduleChecks !== false) {
    const connections = plan._tag === "Single" ? [plan.steps] : plan.connections
    for (const steps of connections) {
      const actions = steps.flatMap((step) => (step._tag === "Action" ? [step] : []))
      for (const module of registry.modules.values()) {
        const problem = module.check?.(actions)
        if (problem !== undefined) {
          const step = actions.find((a) => a.path === problem.path)
          return yield* new ActionInvalid({
            file: top.display,
            path: problem.path,
            action: step?.action ?? module.name,
            reason: problem.reason
          })
        }
      }
    }
  }
  return {
    file: top.display,
    name,
    plan,
    files: [...files.values()].map((f) => f.display),
    names: [...top.scope.keys()],
    blobs: [...used.values()].map((blob) => ({ name: blob.name, bytes: blob.size, verified: blob.verified })),
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
