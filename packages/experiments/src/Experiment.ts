/**
 * An experiment from its file to its reports: load and check the YAML, load the plugins it names, plan the
 * tests, then run them with every event written to `<output>/<name>-<timestamp>/events.jsonl` and render the
 * reports from that log — also when the run is interrupted, so what ran is always reported.
 */
import { EventBus, EventLog, ExitCode, WriteFailed } from "@testbed/events"
import { EnvironmentPlugin, PluginRegistry } from "@testbed/plugins"
import { ReportWriter } from "@testbed/reports"
import {
  Cause,
  Clock,
  Duration,
  Effect,
  Exit,
  FileSystem,
  Layer,
  Path,
  type PlatformError,
  Runtime,
  Schema
} from "effect"
import * as ExperimentConfig from "./ExperimentConfig.ts"
import * as ExperimentManager from "./ExperimentManager.ts"
import * as Execution from "./internal/execution.ts"
import * as Plan from "./Plan.ts"
import * as Preflight from "./Preflight.ts"
import * as Progress from "./Progress.ts"
import * as Replay from "./Replay.ts"
import * as RunMetrics from "./RunMetrics.ts"
import * as RunTrace from "./RunTrace.ts"

export interface Options {
  /** Where run directories are created. Default: the file's `paths.output_dir`, else `outputs`. */
  readonly outputDir?: string | undefined
  readonly filter?: string | undefined
  readonly concurrency?: number | undefined
  readonly retries?: number | undefined
  /** Sample every service's resources this often, whatever the file says (`--metrics-interval`). */
  readonly metricsInterval?: Duration.Duration | undefined
  /** Serve live metrics in the Prometheus text format on 127.0.0.1:PORT while the run lasts (`--metrics-port`). */
  readonly metricsPort?: number | undefined
  /** Export the run as an OpenTelemetry trace to this OTLP/HTTP traces URL (`--otlp`). */
  readonly otlp?: string | undefined
  /** More plugin directories (besides the file's `paths.plugins`). */
  readonly pluginDirectories?: ReadonlyArray<string> | undefined
  /** This host's own plugin directories (a runner's `--plugins`): the experiment's plugins of the same name win. */
  readonly hostPluginDirectories?: ReadonlyArray<string> | undefined
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

/**
 * The `docker` environment (DockerEnvironment.ts), its module loaded when a test sets it up: it pulls in the Docker
 * client, which `--dry-run` and runs on localhost do not need. Its name and description are the module's (a test
 * checks they agree).
 */
export const dockerEnvironment: EnvironmentPlugin.EnvironmentPlugin = {
  name: "docker",
  description: "A stage of containers (one per service) on a private network, through @testbed/stages.",
  setup: (context) =>
    Effect.tryPromise({
      try: () => import("./DockerEnvironment.ts"),
      catch: (error) =>
        new EnvironmentPlugin.EnvironmentSetupFailed({
          environment: "docker",
          test: context.test,
          reason: `cannot load the docker environment: ${String(error)}`
        })
    }).pipe(Effect.flatMap((module) => module.plugin.setup(context)))
}

/** The plugins this package brings on top of @testbed/plugins' own (they need @testbed/replay). */
export const builtins: NonNullable<PluginRegistry.LoadOptions["builtins"]> = {
  services: [Replay.plugin],
  environments: [dockerEnvironment]
}

/** Loads, validates and plans: everything `--dry-run` does. Fails with every problem found. */
export const prepare = Effect.fn("Experiment.prepare")(function* (file: string, options: Options = {}) {
  const path = yield* Path.Path
  const { config, problems, indices, locate } = yield* ExperimentConfig.loadPartial(file)
  const configured = config.paths?.plugins
  const directories = [
    ...(configured === undefined ? [] : typeof configured === "string" ? [configured] : configured).map((dir) =>
      path.resolve(path.dirname(file), dir)
    ),
    ...(options.pluginDirectories ?? [])
  ]
  const registry = yield* PluginRegistry.load({
    directories,
    builtins,
    ...(options.hostPluginDirectories === undefined ? {} : { hostDirectories: options.hostPluginDirectories })
  }).pipe(
    Effect.mapError(
      (error) =>
        new ExperimentConfig.ExperimentConfigInvalid({
          file,
          problems: locate([{ path: "paths.plugins", message: error.message }])
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
    {
      concurrency: options.concurrency,
      retries: options.retries,
      filter: options.filter,
      indices,
      metricsInterval: options.metricsInterval
    }
  )
  const all = locate([...problems, ...(planned.ok ? [] : planned.problems)])
  if (!planned.ok || all.length > 0) return yield* new ExperimentConfig.ExperimentConfigInvalid({ file, problems: all })
  return { file, config, plan: planned.plan, registry } satisfies Prepared
})

/**
 * `--dry-run`: prepares, then checks on this machine what can be checked without running anything (plugins'
 * images and programs, run steps' programs; see Preflight). Fails with every problem, in file order.
 */
export const dryRun = Effect.fn("Experiment.dryRun")(function* (file: string, options: Options = {}) {
  const prepared = yield* prepare(file, options)
  const { indices, locate } = yield* ExperimentConfig.loadPartial(file)
  const problems = yield* Preflight.check(
    prepared.config,
    indices,
    prepared.registry.findService,
    yield* Preflight.liveProbes
  )
  if (problems.length > 0)
    return yield* new ExperimentConfig.ExperimentConfigInvalid({ file, problems: locate(problems) })
  return prepared
})

/**
 * The execution environments of a test's services that cannot run on this machine (a tool not installed, no
 * memory cgroup), as `<service>: <reason>` lines: `--dry-run` reports them; at run time the service runs without.
 */
export const unavailableEnvironments = Effect.fn("Experiment.unavailableEnvironments")(function* (test: Plan.TestPlan) {
  const lines: Array<string> = []
  for (const service of test.services) {
    for (const reason of yield* Execution.unavailable(service.execution, test.environment))
      lines.push(`${service.key}: ${reason}`)
  }
  return lines
})

const stamp = (millis: number) => new Date(millis).toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)

/** The output directory cannot hold a run: it names a file, a place nothing can be created in (/proc)… */
export class OutputDirUnusable extends Schema.TaggedError<OutputDirUnusable>()("OutputDirUnusable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `output directory ${this.path}: ${this.reason}`
  }
  /** A usage problem (a bad `--output-dir` or `paths.output_dir`), like a bad file. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

/** Creating the run directory may wait this long (a hung network file system): then the run does not start. */
export const runDirTimeout: Duration.Duration = Duration.seconds(10)

// Codes of a full or broken disk (infrastructure, exit 3) rather than of a wrong path (exit 2).
const infrastructureCodes = new Set(["ENOSPC", "EDQUOT", "EIO", "EROFS"])

/** What a failed mkdir means: a full or broken disk (exit 3), or an output directory that cannot hold a run. */
const creationFailed = (
  level: string,
  error: PlatformError.PlatformError
): OutputDirUnusable | WriteFailed.WriteFailed => {
  const cause = WriteFailed.systemCause(error)
  if (cause.code !== undefined && infrastructureCodes.has(cause.code)) return WriteFailed.fromError(level, error)
  return new OutputDirUnusable({
    path: level,
    reason: `cannot create it: ${cause.reason}${cause.code === undefined ? "" : ` (${cause.code})`}`
  })
}

/**
 * Creates `dir` and its missing parents one level at a time. Node's recursive mkdir loops forever under /proc
 * (each level "does not exist" and cannot be created); one level at a time, that is a plain ENOENT.
 */
const makeDirectories = Effect.fn("Experiment.makeDirectories")(function* (dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const missing: Array<string> = []
  for (let at = dir; !(yield* fs.exists(at).pipe(Effect.orElseSucceed(() => false))); at = path.dirname(at)) {
    missing.unshift(at)
    if (path.dirname(at) === at) break
  }
  for (const level of missing) {
    yield* fs
      .makeDirectory(level)
      .pipe(
        Effect.catch((error) =>
          WriteFailed.systemCause(error).code === "EEXIST" ? Effect.void : Effect.fail(creationFailed(level, error))
        )
      )
  }
})

/** Suffixes tried after `<name>-<stamp>` is taken (`-2`, `-3`, …) before giving up. */
const runDirAttempts = 1000

/**
 * Creates a fresh run directory `<output>/<name>-<YYYYMMDD-HHMMSS>`, suffixed `-2`, `-3`, … when taken, within
 * `runDirTimeout`. The output directory is created as needed, then each candidate with a single mkdir, which fails
 * when the directory exists: two runs started in the same second (two processes, or two fibers) never share one.
 */
export const makeRunDir = Effect.fn("Experiment.makeRunDir")(function* (outputDir: string, name: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const parent = path.resolve(outputDir)
  const base = path.join(parent, `${Plan.slugify(name)}-${stamp(yield* Clock.currentTimeMillis)}`)
  // true: created here, so this run owns it; false: it exists (another run's), try the next suffix.
  const claim = (dir: string) =>
    fs.makeDirectory(dir).pipe(
      Effect.as(true),
      Effect.catch((error) =>
        WriteFailed.systemCause(error).code === "EEXIST"
          ? Effect.succeed(false)
          : Effect.fail(creationFailed(dir, error))
      )
    )
  const create = Effect.gen(function* () {
    yield* makeDirectories(parent)
    for (let n = 1; n <= runDirAttempts; n++) {
      const dir = n === 1 ? base : `${base}-${n}`
      if (yield* claim(dir)) return dir
    }
    return yield* new OutputDirUnusable({
      path: parent,
      reason: `no free run directory after ${runDirAttempts} tries (${base}-N)`
    })
  })
  return yield* create.pipe(
    Effect.timeoutOrElse({
      duration: runDirTimeout,
      orElse: () =>
        Effect.fail(
          new OutputDirUnusable({
            path: parent,
            reason: `creating the run directory did not finish within ${Duration.format(runDirTimeout)}`
          })
        )
    })
  )
})

/** Whether a run ended because one of its files could not be written. */
const stoppedByWrite = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isFailure(exit) &&
  exit.cause.reasons.some((reason) => Cause.isFailReason(reason) && WriteFailed.isWriteFailed(reason.error))

/** Runs a prepared experiment and renders its reports (also when interrupted). */
export const runPrepared = Effect.fn("Experiment.runPrepared")(function* (prepared: Prepared, options: Options = {}) {
  const path = yield* Path.Path
  const outputDir = options.outputDir ?? prepared.config.paths?.output_dir ?? "outputs"
  const runDir = yield* makeRunDir(outputDir, prepared.plan.name)
  const logPath = path.join(runDir, ReportWriter.eventLogName)
  const layers = Layer.mergeAll(
    EventLog.storage(logPath),
    Progress.layer(options.progress ?? Progress.detect()),
    options.metricsPort === undefined ? Layer.empty : RunMetrics.layer({ port: options.metricsPort }),
    options.otlp === undefined ? Layer.empty : RunTrace.layer(options.otlp)
  ).pipe(Layer.provideMerge(EventBus.EventBus.layer))
  const render = ReportWriter.renderDirectory(runDir, options.formats === undefined ? {} : { formats: options.formats })
  let reports: ReadonlyArray<string> = []
  const result = yield* Effect.flatMap(EventLog.EventLogStorage, (storage) =>
    ExperimentManager.run(prepared.plan, {
      runDir,
      configurationFile: path.resolve(prepared.file),
      registry: prepared.registry,
      // The event log failing to write (a full disk) stops the run at once.
      abortOn: storage.failed
    })
  ).pipe(
    Effect.provide(layers),
    // The event log could not even be opened in the fresh run directory: the disk, not the user.
    Effect.catchTag("EventLogUnavailable", (error) =>
      Effect.fail(new WriteFailed.WriteFailed({ path: error.path, reason: error.reason }))
    ),
    // Runs after the event log is closed, on success and on interruption alike; not after a write failure
    // (the disk is full: rendering would fail too, leaving half-written files). What was recorded is kept.
    Effect.onExit((exit) =>
      stoppedByWrite(exit)
        ? Effect.sync(() => {
            process.stderr.write(
              `run stopped; what was recorded is in ${logPath}; once the disk has room: testbed report ${runDir}\n`
            )
          })
        : Effect.flatMap(Effect.result(render), (rendered) =>
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
