/**
 * An experiment from its file to its reports: load and check the YAML, load the plugins it names, plan the
 * tests, then run them with every event written to `<output>/<name>-<timestamp>/events.jsonl` and render the
 * reports from that log — also when the run is interrupted, so what ran is always reported.
 */
import { EventBus, EventLog } from "@testbed/events"
import { PluginRegistry } from "@testbed/plugins"
import { ReportWriter } from "@testbed/reports"
import { Clock, Effect, Exit, FileSystem, Layer, Path } from "effect"
import * as DockerEnvironment from "./DockerEnvironment.ts"
import * as ExperimentConfig from "./ExperimentConfig.ts"
import * as ExperimentManager from "./ExperimentManager.ts"
import * as Plan from "./Plan.ts"
import * as Progress from "./Progress.ts"
import * as Replay from "./Replay.ts"

export interface Options {
  /** Where run directories are created. Default: the file's `paths.output_dir`, else `outputs`. */
  readonly outputDir?: string | undefined
  readonly filter?: string | undefined
  readonly concurrency?: number | undefined
  readonly retries?: number | undefined
  /** More plugin directories (besides the file's `paths.plugins`). */
  readonly pluginDirectories?: ReadonlyArray<string> | undefined
  readonly progress?: Progress.Mode | undefined
  readonly formats?: ReadonlyArray<ReportWriter.Format> | undefined
}

export interface Prepared {
  readonly file: string
  readonly config: ExperimentConfig.ExperimentConfig
  readonly plan: Plan.ExperimentPlan
  readonly registry: PluginRegistry.PluginRegistry["Service"]
}

export interface Outcome {
  readonly runDir: string
  readonly result: ExperimentManager.ExperimentResult | undefined
  readonly reports: ReadonlyArray<string>
  /** The HTML report, when one was written. */
  readonly html: string | undefined
}

/** The plugins this package brings on top of @testbed/plugins' own (they need @testbed/replay). */
export const builtins: NonNullable<PluginRegistry.LoadOptions["builtins"]> = {
  services: [Replay.plugin],
  environments: [DockerEnvironment.plugin]
}

/** Loads, validates and plans: everything `--dry-run` does. Fails with every problem found. */
export const prepare = Effect.fn("Experiment.prepare")(function* (file: string, options: Options = {}) {
  const path = yield* Path.Path
  const { config, problems, indices } = yield* ExperimentConfig.loadPartial(file)
  const configured = config.paths?.plugins
  const directories = [
    ...(configured === undefined ? [] : typeof configured === "string" ? [configured] : configured).map((dir) =>
      path.resolve(path.dirname(file), dir)
    ),
    ...(options.pluginDirectories ?? [])
  ]
  const registry = yield* PluginRegistry.load({ directories, builtins }).pipe(
    Effect.mapError(
      (error) =>
        new ExperimentConfig.ExperimentConfigInvalid({
          file,
          problems: [{ path: "paths.plugins", message: error.message }]
        })
    )
  )
  const name = path.basename(file).replace(/\.ya?ml$/, "")
  const planned = Plan.make(
    config,
    name,
    {
      findService: registry.findService,
      findEnvironment: registry.findEnvironment,
      serviceNames: registry.services.map((s) => s.plugin.name),
      environmentNames: registry.environments.map((e) => e.plugin.name)
    },
    { concurrency: options.concurrency, retries: options.retries, filter: options.filter, indices }
  )
  const all = [...problems, ...(planned.ok ? [] : planned.problems)].sort((a, b) => a.path.localeCompare(b.path))
  if (!planned.ok || all.length > 0) return yield* new ExperimentConfig.ExperimentConfigInvalid({ file, problems: all })
  return { file, config, plan: planned.plan, registry } satisfies Prepared
})

const stamp = (millis: number) => new Date(millis).toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)

/** Suffixes tried after `<name>-<stamp>` is taken (`-2`, `-3`, …) before giving up. */
const runDirAttempts = 1000

/**
 * Creates a fresh run directory `<output>/<name>-<YYYYMMDD-HHMMSS>`, suffixed `-2`, `-3`, … when taken. Each
 * candidate is created with a non-recursive mkdir, which fails when the directory exists: two runs started in
 * the same second (two processes, or two fibers) can never be handed the same directory.
 */
export const makeRunDir = Effect.fn("Experiment.makeRunDir")(function* (outputDir: string, name: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const parent = path.resolve(outputDir)
  yield* fs.makeDirectory(parent, { recursive: true }).pipe(Effect.orDie)
  const base = path.join(parent, `${Plan.slugify(name)}-${stamp(yield* Clock.currentTimeMillis)}`)
  for (let n = 1; n <= runDirAttempts; n++) {
    const dir = n === 1 ? base : `${base}-${n}`
    const created = yield* fs.makeDirectory(dir).pipe(
      Effect.as(true),
      Effect.catchIf(
        (error) => error.reason._tag === "AlreadyExists",
        () => Effect.succeed(false)
      ),
      Effect.orDie
    )
    if (created) return dir
  }
  return yield* Effect.die(new Error(`no free run directory after ${runDirAttempts} tries: ${base}-N`))
})

/** Runs a prepared experiment and renders its reports (also when interrupted). */
export const runPrepared = Effect.fn("Experiment.runPrepared")(function* (prepared: Prepared, options: Options = {}) {
  const path = yield* Path.Path
  const outputDir = options.outputDir ?? prepared.config.paths?.output_dir ?? "outputs"
  const runDir = yield* makeRunDir(outputDir, prepared.plan.name)
  const layers = Layer.mergeAll(
    EventLog.storage(path.join(runDir, ReportWriter.eventLogName)),
    Progress.layer(options.progress ?? Progress.detect())
  ).pipe(Layer.provideMerge(EventBus.EventBus.layer))
  const render = ReportWriter.renderDirectory(runDir, options.formats === undefined ? {} : { formats: options.formats })
  let reports: ReadonlyArray<string> = []
  const result = yield* ExperimentManager.run(prepared.plan, {
    runDir,
    configurationFile: path.resolve(prepared.file),
    registry: prepared.registry
  }).pipe(
    Effect.provide(layers),
    // Runs after the event log is closed, on success and on interruption alike.
    Effect.onExit((exit) =>
      Effect.flatMap(Effect.result(render), (rendered) =>
        Effect.sync(() => {
          if (rendered._tag === "Success") reports = rendered.success
          else process.stderr.write(`reports not written: ${rendered.failure.message}\n`)
          if (Exit.isFailure(exit) && rendered._tag === "Success") {
            const html = rendered.success.find((file) => file.endsWith(".html"))
            process.stderr.write(`run stopped; reports of what ran: ${html ?? runDir}\n`)
          }
        })
      )
    )
  )
  return {
    runDir,
    result,
    reports,
    html: reports.find((file) => file.endsWith(".html"))
  } satisfies Outcome
})

/** Prepares and runs. */
export const run = Effect.fn("Experiment.run")(function* (file: string, options: Options = {}) {
  return yield* runPrepared(yield* prepare(file, options), options)
})
