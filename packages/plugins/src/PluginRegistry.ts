/**
 * The plugins an experiment can use: the built-in ones, plus modules from directories the user named and npm
 * packages. A module's default export (one plugin or an array) is validated by a Schema; a bad plugin is an
 * error naming the file and the field. Code is loaded only from places the user asked for.
 */
import { createRequire } from "node:module"
import { pathToFileURL } from "node:url"
import { EventBus, ExitCode, type PluginEvent, type TestbedEvent } from "@testbed/events"
import { Context, Duration, Effect, FileSystem, Layer, Option, Path, Runtime, Schema } from "effect"
import * as Builtins from "./Builtins.ts"
import { type EnvironmentPlugin, EnvironmentPluginShape } from "./EnvironmentPlugin.ts"
import * as LocalhostEnvironment from "./LocalhostEnvironment.ts"
import { decodeAll } from "./Problems.ts"
import { ServicePlugin } from "./ServicePlugin.ts"

export class PluginNotFound extends Schema.TaggedError<PluginNotFound>()("PluginNotFound", {
  kind: Schema.Literals(["service", "environment"]),
  name: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `no ${this.kind} plugin named "${this.name}" (known: ${this.known.join(", ")})`
  }
}

export class PluginInvalid extends Schema.TaggedError<PluginInvalid>()("PluginInvalid", {
  source: Schema.String,
  field: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `invalid plugin in ${this.source}: ${this.field === "" ? "" : `${this.field}: `}${this.reason}`
  }
}

export interface Registered<P> {
  readonly plugin: P
  /** "builtin", a file path, or `npm:<package>`. */
  readonly source: string
}

export interface LoadOptions {
  /** Directories whose modules are loaded as plugins (only ones the user named: flag or config). */
  readonly directories?: ReadonlyArray<string>
  /**
   * This host's own plugin directories (a runner's `--plugins`), loaded last: a plugin whose name is taken by then is
   * left out, not refused. An experiment that brings its own copy of a plugin the host also has runs with its own
   * (the one its run was signed with), where the two used to clash and the attempt was refused.
   */
  readonly hostDirectories?: ReadonlyArray<string>
  /** npm packages (resolved from the current directory) whose default export is a plugin. */
  readonly packages?: ReadonlyArray<string>
  /**
   * More built-in plugins (source "builtin"), from packages that cannot be dependencies of this one: the
   * `replay` service and `docker` environment of @testbed/experiments.
   */
  readonly builtins?: {
    readonly services?: ReadonlyArray<ServicePlugin>
    readonly environments?: ReadonlyArray<EnvironmentPlugin>
  }
  /** Plugins given as values (a program embedding testbed). */
  readonly services?: ReadonlyArray<ServicePlugin>
  readonly environments?: ReadonlyArray<EnvironmentPlugin>
  /** How long one module may take to load (its top-level code and awaits). Default 20 seconds. */
  readonly importTimeout?: Duration.Input | undefined
}

/** A module whose top level never finishes (an `await` on something that never comes) cannot hang a run. */
export const defaultImportTimeout: Duration.Duration = Duration.seconds(20)

export class PluginRegistry extends Context.Service<
  PluginRegistry,
  {
    readonly services: ReadonlyArray<Registered<ServicePlugin>>
    readonly environments: ReadonlyArray<Registered<EnvironmentPlugin>>
    readonly findService: (name: string) => ServicePlugin | undefined
    readonly findEnvironment: (name: string) => EnvironmentPlugin | undefined
    readonly service: (name: string) => Effect.Effect<ServicePlugin, PluginNotFound>
    readonly environment: (name: string) => Effect.Effect<EnvironmentPlugin, PluginNotFound>
  }
>()("@testbed/plugins/PluginRegistry") {
  static readonly layer = (options: LoadOptions = {}) => Layer.effect(PluginRegistry, load(options))
  /** Plugins given as values only (no module loaded, no file read): see `fromValues`. */
  static readonly layerTest = (values: Parameters<typeof fromValues>[0]) =>
    Layer.effect(PluginRegistry, fromValues(values))
}

const isModuleFile = (name: string) =>
  /\.(m?js|ts)$/.test(name) && !name.endsWith(".d.ts") && !/\.test\.(m?js|ts)$/.test(name)

const importModule = (specifier: string, source: string, timeout: Duration.Duration) =>
  Effect.tryPromise({
    try: () => import(specifier) as Promise<{ readonly default?: unknown }>,
    catch: (error) =>
      new PluginInvalid({
        source,
        field: "",
        reason: `cannot load module: ${error instanceof Error ? error.message : String(error)}`
      })
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          new PluginInvalid({
            source,
            field: "",
            reason: `the module did not finish loading within ${Duration.format(timeout)} (a top-level await that never ends?)`
          })
        )
    }),
    Effect.withSpan("PluginRegistry.importModule", { attributes: { source } })
  )

const validate = (
  exported: unknown,
  source: string
): Effect.Effect<
  ReadonlyArray<
    | { readonly kind: "service"; readonly plugin: ServicePlugin }
    | { readonly kind: "environment"; readonly plugin: EnvironmentPlugin }
  >,
  PluginInvalid
> => {
  if (exported === undefined) {
    return Effect.fail(new PluginInvalid({ source, field: "default", reason: "the module has no default export" }))
  }
  const items = Array.isArray(exported) ? exported : [exported]
  return Effect.forEach(items, (item, index) => {
    const base = Array.isArray(exported) ? [`default[${index}]`] : ["default"]
    const isEnvironment = typeof item === "object" && item !== null && "setup" in item
    const decoded = isEnvironment ? decodeAll(EnvironmentPluginShape, item, base) : decodeAll(ServicePlugin, item, base)
    if (!decoded.ok) {
      const first = decoded.problems[0]!
      const more = decoded.problems.length > 1 ? ` (and ${decoded.problems.length - 1} more problem(s))` : ""
      return Effect.fail(new PluginInvalid({ source, field: first.path, reason: `${first.message}${more}` }))
    }
    return Effect.succeed(
      isEnvironment
        ? { kind: "environment" as const, plugin: item as EnvironmentPlugin }
        : { kind: "service" as const, plugin: decoded.value as ServicePlugin }
    )
  })
}

type Found = ReadonlyArray<
  | { readonly kind: "service"; readonly plugin: ServicePlugin }
  | { readonly kind: "environment"; readonly plugin: EnvironmentPlugin }
>

interface Lists {
  readonly services: Array<Registered<ServicePlugin>>
  readonly environments: Array<Registered<EnvironmentPlugin>>
}

/** The registry over complete lists. */
const fromLists = ({ services, environments }: Lists): PluginRegistry["Service"] => {
  const findService = (name: string) => services.find((registered) => registered.plugin.name === name)?.plugin
  const findEnvironment = (name: string) => environments.find((registered) => registered.plugin.name === name)?.plugin
  return PluginRegistry.of({
    services,
    environments,
    findService,
    findEnvironment,
    service: (name) => {
      const found = findService(name)
      return found !== undefined
        ? Effect.succeed(found)
        : Effect.fail(new PluginNotFound({ kind: "service", name, known: services.map((s) => s.plugin.name) }))
    },
    environment: (name) => {
      const found = findEnvironment(name)
      return found !== undefined
        ? Effect.succeed(found)
        : Effect.fail(new PluginNotFound({ kind: "environment", name, known: environments.map((e) => e.plugin.name) }))
    }
  })
}

/**
 * Adds plugins to the lists; a name already taken is refused, naming where the first one came from (`yielding`:
 * left out instead, for a host's own plugins).
 */
const adder =
  (lists: Lists, onAdded: (name: string, kind: "service" | "environment", source: string) => Effect.Effect<void>) =>
  (found: Found, source: string, yielding = false): Effect.Effect<void, PluginInvalid> =>
    Effect.forEach(
      found,
      (entry) => {
        const list: Array<Registered<{ readonly name: string }>> =
          entry.kind === "service" ? lists.services : lists.environments
        const existing = list.find((registered) => registered.plugin.name === entry.plugin.name)
        if (existing !== undefined && yielding) return Effect.void
        if (existing !== undefined) {
          return Effect.fail(
            new PluginInvalid({
              source,
              field: "name",
              reason: `a ${entry.kind} plugin named "${entry.plugin.name}" is already registered (from ${existing.source})`
            })
          )
        }
        if (entry.kind === "service") lists.services.push({ plugin: entry.plugin, source })
        else lists.environments.push({ plugin: entry.plugin, source })
        return onAdded(entry.plugin.name, entry.kind, source)
      },
      { discard: true }
    )

const asFound = (values: {
  readonly services?: ReadonlyArray<ServicePlugin> | undefined
  readonly environments?: ReadonlyArray<EnvironmentPlugin> | undefined
}): Found => [
  ...(values.services ?? []).map((plugin) => ({ kind: "service" as const, plugin })),
  ...(values.environments ?? []).map((plugin) => ({ kind: "environment" as const, plugin }))
]

/** Loads every module of a directory (a sub-directory by its index file), in name order. */
const loadDirectory = Effect.fn("PluginRegistry.loadDirectory")(function* (
  directory: string,
  loadOne: (specifier: string, source: string) => Effect.Effect<void, PluginInvalid>
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const absolute = path.resolve(directory)
  const entries = yield* fs
    .readDirectory(absolute)
    .pipe(
      Effect.mapError(
        (error) =>
          new PluginInvalid({ source: absolute, field: "", reason: `cannot read plugin directory: ${error.message}` })
      )
    )
  for (const entry of [...entries].sort()) {
    const file = path.join(absolute, entry)
    const info = yield* Effect.option(fs.stat(file))
    if (Option.isNone(info)) continue
    if (info.value.type === "Directory") {
      const index = ["index.ts", "index.mjs", "index.js"].map((name) => path.join(file, name))
      for (const candidate of index) {
        if (yield* fs.exists(candidate).pipe(Effect.orElseSucceed(() => false))) {
          yield* loadOne(pathToFileURL(candidate).href, candidate)
          break
        }
      }
    } else if (isModuleFile(entry)) {
      yield* loadOne(pathToFileURL(file).href, file)
    }
  }
})

/** The file an npm package's main module is, resolved from the current directory. */
const resolvePackage = Effect.fn("PluginRegistry.resolvePackage")(function* (name: string) {
  const path = yield* Path.Path
  return yield* Effect.try({
    try: () => createRequire(path.join(process.cwd(), "package.json")).resolve(name),
    catch: () =>
      new PluginInvalid({ source: `npm:${name}`, field: "", reason: `package "${name}" is not installed here` })
  })
})

/** Built-in service plugins and this machine's environment: where every registry starts. */
const builtinLists = (): Lists => ({
  services: Builtins.services.map((plugin) => ({ plugin, source: "builtin" })),
  environments: [{ plugin: LocalhostEnvironment.make(), source: "builtin" }]
})

/** Builds a registry: built-ins first, then the given values, directories and packages in order. */
export const load = Effect.fn("PluginRegistry.load")(function* (options: LoadOptions = {}) {
  const bus = yield* Effect.serviceOption(EventBus.EventBus)
  const lists = builtinLists()
  const emit = <T extends PluginEvent.PluginEvent["type"]>(type: T, data: TestbedEvent.DataOf<T>, entityId: string) =>
    Option.match(bus, {
      onNone: () => Effect.void,
      onSome: (b) => Effect.asVoid(b.emit({ type, entityId, data }))
    })
  const add = adder(lists, (name, kind, source) => emit("plugin.loaded", { name, kind, source }, name))
  const importTimeout = Duration.fromInputUnsafe(options.importTimeout ?? defaultImportTimeout)
  const loadOne = (specifier: string, source: string, yielding = false) =>
    importModule(specifier, source, importTimeout).pipe(
      Effect.flatMap((module) => validate(module.default, source)),
      Effect.flatMap((found) => add(found, source, yielding)),
      Effect.tapError((error) => emit("plugin.failed", { source, reason: error.message }, source))
    )
  yield* add(asFound(options.builtins ?? {}), "builtin")
  yield* add(asFound(options), "embedded")
  for (const directory of options.directories ?? []) yield* loadDirectory(directory, loadOne)
  for (const name of options.packages ?? [])
    yield* loadOne(pathToFileURL(yield* resolvePackage(name)).href, `npm:${name}`)
  for (const directory of options.hostDirectories ?? [])
    yield* loadDirectory(directory, (specifier, source) => loadOne(specifier, source, true))
  return fromLists(lists)
})

/**
 * A registry of plugins given as values, nothing loaded: the built-in service plugins, then `services`; the given
 * `environments`, with this machine's `localhost` unless one of them takes that name (a fake, in tests).
 */
export const fromValues = Effect.fn("PluginRegistry.fromValues")(function* (values: {
  readonly services?: ReadonlyArray<ServicePlugin> | undefined
  readonly environments?: ReadonlyArray<EnvironmentPlugin> | undefined
}) {
  const lists = builtinLists()
  if ((values.environments ?? []).some((plugin) => plugin.name === "localhost")) lists.environments.length = 0
  yield* adder(lists, () => Effect.void)(asFound(values), "embedded")
  return fromLists(lists)
})
