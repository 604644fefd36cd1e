/**
 * The plugins an experiment can use: the built-in ones, plus modules from directories the user named and npm
 * packages. A module's default export (one plugin or an array) is validated by a Schema; a bad plugin is an
 * error naming the file and the field. Code is loaded only from places the user asked for.
 */
import { createRequire } from "node:module"
import { pathToFileURL } from "node:url"
import { EventBus, ExitCode } from "@testbed/events"
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
    })
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

/** Builds a registry: built-ins first, then the given values, directories and packages in order. */
export const load = Effect.fn("PluginRegistry.load")(function* (options: LoadOptions = {}) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const bus = yield* Effect.serviceOption(EventBus.EventBus)
  const services: Array<Registered<ServicePlugin>> = Builtins.services.map((plugin) => ({ plugin, source: "builtin" }))
  const environments: Array<Registered<EnvironmentPlugin>> = [
    { plugin: LocalhostEnvironment.make(), source: "builtin" }
  ]

  const emit = (type: string, data: Record<string, unknown>, entityId: string) =>
    Option.match(bus, {
      onNone: () => Effect.void,
      onSome: (b) => Effect.asVoid(b.emit({ type, entityType: "plugin", entityId, data }))
    })

  const add = Effect.fnUntraced(function* (
    found: ReadonlyArray<
      | { readonly kind: "service"; readonly plugin: ServicePlugin }
      | { readonly kind: "environment"; readonly plugin: EnvironmentPlugin }
    >,
    source: string
  ) {
    for (const entry of found) {
      const list: Array<Registered<{ readonly name: string }>> = entry.kind === "service" ? services : environments
      const existing = list.find((registered) => registered.plugin.name === entry.plugin.name)
      if (existing !== undefined) {
        return yield* new PluginInvalid({
          source,
          field: "name",
          reason: `a ${entry.kind} plugin named "${entry.plugin.name}" is already registered (from ${existing.source})`
        })
      }
      if (entry.kind === "service") services.push({ plugin: entry.plugin, source })
      else environments.push({ plugin: entry.plugin, source })
      yield* emit("plugin.loaded", { name: entry.plugin.name, kind: entry.kind, source }, entry.plugin.name)
    }
  })

  const importTimeout = Duration.fromInputUnsafe(options.importTimeout ?? defaultImportTimeout)
  const loadOne = (specifier: string, source: string) =>
    importModule(specifier, source, importTimeout).pipe(
      Effect.flatMap((module) => validate(module.default, source)),
      Effect.flatMap((found) => add(found, source)),
      Effect.tapError((error) => emit("plugin.failed", { source, reason: error.message }, source))
    )

  yield* add(
    [
      ...(options.builtins?.services ?? []).map((plugin) => ({ kind: "service" as const, plugin })),
      ...(options.builtins?.environments ?? []).map((plugin) => ({ kind: "environment" as const, plugin }))
    ],
    "builtin"
  )
  yield* add(
    [
      ...(options.services ?? []).map((plugin) => ({ kind: "service" as const, plugin })),
      ...(options.environments ?? []).map((plugin) => ({ kind: "environment" as const, plugin }))
    ],
    "embedded"
  )
  for (const directory of options.directories ?? []) {
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
  }
  for (const name of options.packages ?? []) {
    const source = `npm:${name}`
    const resolved = yield* Effect.try({
      try: () => createRequire(path.join(process.cwd(), "package.json")).resolve(name),
      catch: () => new PluginInvalid({ source, field: "", reason: `package "${name}" is not installed here` })
    })
    yield* loadOne(pathToFileURL(resolved).href, source)
  }

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
})
