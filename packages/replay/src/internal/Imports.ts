// The action modules a script imports: registered ones by name; code from a file path only when the user allowed it.
import * as Path from "node:path"
import * as Url from "node:url"
import { Effect } from "effect"
import { type ActionModule, type ActionRegistry, isActionModule } from "../Action.ts"
import { ActionInvalid } from "./LoadErrors.ts"
import type { ImportStep } from "./ScriptFiles.ts"

const looksLikePath = (name: string) => name.includes("/") || /\.[cm]?[jt]s$/.test(name)

/** Loads a module from a path beside the importing file: its default export must be an ActionModule. */
const fromPath = Effect.fn("ScriptLoader.importPath")(function* (step: ImportStep, moduleName: string) {
  const invalid = (reason: string) =>
    new ActionInvalid({ file: step.file.display, path: step.path, action: "import", reason })
  const url = Url.pathToFileURL(Path.resolve(Path.dirname(step.file.path), moduleName)).href
  const loaded = yield* Effect.tryPromise({
    try: () => import(url) as Promise<{ default?: unknown }>,
    catch: (error) => invalid(`cannot load ${moduleName}: ${String(error)}`)
  })
  if (!isActionModule(loaded.default))
    return yield* invalid(`${moduleName} has no default export that is an ActionModule`)
  return loaded.default
})

const resolveOne = Effect.fn("ScriptLoader.import")(function* (
  step: ImportStep,
  registry: ActionRegistry["Service"],
  allowModulePaths: boolean
) {
  const invalid = (reason: string) =>
    new ActionInvalid({ file: step.file.display, path: step.path, action: "import", reason })
  const [moduleName] = step.args
  if (step.args.length !== 1 || typeof moduleName !== "string") return yield* invalid("takes one module name")
  const registered = registry.modules.get(moduleName)
  if (registered !== undefined) return registered
  if (!looksLikePath(moduleName)) {
    const known = [...registry.modules.keys()].join(", ") || "none"
    return yield* invalid(`module "${moduleName}" is not registered (registered: ${known})`)
  }
  if (!allowModulePaths) return yield* invalid(`loading code from a path needs --allow-module-path ("${moduleName}")`)
  return yield* fromPath(step, moduleName)
})

/** Every imported module by name (imports count wherever they are: a module's actions are valid in every file). */
export const resolve = Effect.fn("ScriptLoader.imports")(function* (
  steps: ReadonlyArray<ImportStep>,
  registry: ActionRegistry["Service"],
  allowModulePaths: boolean
) {
  const modules = new Map<string, ActionModule>()
  for (const step of steps) {
    const module = yield* resolveOne(step, registry, allowModulePaths)
    modules.set(module.name, module)
  }
  return modules
})
