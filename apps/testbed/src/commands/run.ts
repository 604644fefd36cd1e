/**
 * `testbed run CONFIG [--output-dir DIR] [--dry-run] [--filter NAME] [--concurrency N] [--retries N] [--plugins DIR]
 * [--json | --events -] [--metrics-interval TIME] [--metrics-port PORT] [--otlp URL] [--cluster URL …]`: runs an experiment file and
 * points at its HTML report. Exit 0 only when every test passed (skipped and unsupported do not fail a run), 1 when
 * one did not, 2 when the file has problems, 3 infrastructure. `--json` prints one summary document (RunSummary)
 * instead of text; `--events -` streams the event log to stdout as JSON lines. Flags in runFlags.ts, output in
 * runOutput.ts.
 */
// The one module of @testbed/events the CLI needs before a command runs (its index loads every event family).
import * as NodePath from "node:path"
import * as ExitCode from "@testbed/events/ExitCode"
import type { Experiment } from "@testbed/experiments"
import { Console, Effect, Option, Result } from "effect"
import { Command } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"
import { onCluster, withoutCluster } from "./runCluster.ts"
import { runFlags, type Stdout, stdoutOf } from "./runFlags.ts"
import { counts, dryRunListing } from "./runOutput.ts"

// The experiment manager (and through it every library) is loaded when the command runs, not for `run --help`.
const libraries = Effect.promise(() =>
  Promise.all([import("@testbed/experiments"), import("@testbed/plugins"), import("@testbed/events")]).then(
    ([experiments, plugins, events]) => ({ experiments, Problems: plugins.Problems, TimeSpan: events.TimeSpan })
  )
)
type Libraries = Effect.Success<typeof libraries>

type Flags = Command.Command.Config.Infer<typeof runFlags>

/** The library's options from the flags; a bad `--metrics-interval` is a usage error naming it. */
const optionsOf = Effect.fn("RunCommand.optionsOf")(function* (lib: Libraries, flags: Flags, stdout: Stdout) {
  const interval = Option.getOrUndefined(Option.map(flags.metricsInterval, lib.TimeSpan.parse))
  if (interval !== undefined && Result.isFailure(interval))
    return yield* new ExitWith({ code: ExitCode.usage, message: `--metrics-interval: ${interval.failure}` })
  const progress = stdout === "events" ? "events" : stdout === "json" ? "none" : flags.plain ? "plain" : undefined
  return {
    // A resumed run goes beside the run it continues, unless told otherwise.
    outputDir: Option.getOrUndefined(Option.orElse(flags.outputDir, () => Option.map(flags.resume, NodePath.dirname))),
    filter: Option.getOrUndefined(flags.filter),
    concurrency: Option.getOrUndefined(flags.concurrency),
    retries: Option.getOrUndefined(flags.retries),
    pluginDirectories: flags.plugins,
    metricsPort: Option.getOrUndefined(flags.metricsPort),
    otlp: Option.getOrUndefined(flags.otlp),
    metricsInterval: interval?.success,
    ...(progress === undefined ? {} : { progress })
  } satisfies Experiment.Options as Experiment.Options
})

/**
 * The experiment file: CONFIG, or with `--resume RUNDIR --cluster URL` and no CONFIG the one the run was started with
 * (and then the run's record, `resumed`, read for it).
 * Cluster flags without `--cluster` are a usage error (the run would ignore them and go on locally).
 */
const configOf = Effect.fn("RunCommand.configOf")(function* (flags: Flags) {
  const stray = withoutCluster(flags)
  if (stray.length > 0)
    return yield* new ExitWith({
      code: ExitCode.usage,
      message: `${stray.join(", ")} ${stray.length === 1 ? "works" : "work"} only with --cluster URL`
    })
  if (Option.isSome(flags.config)) return { config: flags.config.value, resumed: undefined }
  if (Option.isSome(flags.resume)) {
    const Resume = yield* Effect.promise(() => import("@testbed/cluster/Resume"))
    // Read once: the coordinator resumes from this record too (a long run's event log is large).
    const resumed = yield* Resume.load(flags.resume.value)
    return { config: yield* Resume.experimentFile(resumed), resumed }
  }
  return yield* new ExitWith({
    code: ExitCode.usage,
    message: "give the experiment file: testbed run FILE (or testbed run --resume RUNDIR --cluster URL)"
  })
})

/** Loads and plans (and with `--dry-run` checks the machine); every problem printed, in file order. */
const prepare = (lib: Libraries, flags: Flags, config: string, options: Experiment.Options) =>
  (flags.dryRun
    ? lib.experiments.Experiment.dryRun(config, options)
    : lib.experiments.Experiment.prepare(config, options)
  ).pipe(
    Effect.catchTag("ExperimentConfigInvalid", (error) =>
      Console.error(
        `${error.file}: ${error.problems.length} problem(s)\n${lib.Problems.format(error.problems, error.file)}`
      ).pipe(
        Effect.andThen(
          flags.json
            ? Console.log(JSON.stringify(lib.experiments.RunSummary.ofProblems(error.file, error.problems)))
            : Effect.void
        ),
        Effect.andThen(Effect.fail(new ExitWith({ code: ExitCode.ofError(error) })))
      )
    )
  )

/** Runs the prepared experiment and says how it went: one JSON document, or the counts and the report's path. */
const runAndReport = Effect.fn("RunCommand.runAndReport")(function* (
  lib: Libraries,
  flags: Flags,
  { config, resumed }: Effect.Success<ReturnType<typeof configOf>>,
  prepared: Experiment.Prepared,
  options: Experiment.Options,
  stdout: Stdout
) {
  // With --cluster the same run, its test cases executed on the cluster's runners (runCluster.ts).
  const outcome = yield* onCluster(
    flags,
    config,
    flags.plugins,
    options.outputDir ?? prepared.config.paths?.output_dir ?? "outputs",
    lib.experiments.Experiment.runPrepared(prepared, options),
    resumed
  )
  const result = outcome.result
  if (stdout === "json") {
    const summary = lib.experiments.RunSummary.of(outcome, `${outcome.runDir}/events.jsonl`)
    yield* Console.log(JSON.stringify(summary))
    if (!summary.ok) return yield* new ExitWith({ code: summary.exitCode })
    return
  }
  // With --events -, stdout carries only the event log: the human lines go to stderr.
  const say = stdout === "events" ? Console.error : Console.log
  if (result !== undefined) yield* say(counts(result))
  yield* say(outcome.html === undefined ? `Run directory: ${outcome.runDir}` : `HTML report: ${outcome.html}`)
  if (result === undefined || !lib.experiments.ExperimentManager.succeeded(result)) {
    return yield* new ExitWith({
      code: ExitCode.testFailed,
      ...(result === undefined ? { message: "the run did not complete" } : {})
    })
  }
})

export const runCommand = Command.make(
  "run",
  runFlags,
  Effect.fn(function* (flags) {
    const stdout = yield* stdoutOf(flags.events, flags.json)
    const file = yield* configOf(flags)
    const lib = yield* libraries
    const options = yield* optionsOf(lib, flags, stdout)
    const prepared = yield* prepare(lib, flags, file.config, options)
    if (flags.dryRun) return yield* dryRunListing(lib.experiments, file.config, prepared, flags.json)
    return yield* runAndReport(lib, flags, file, prepared, options, stdout)
  })
).pipe(
  Command.withDescription(
    "Run an experiment: bring implementations and testers up, run steps, check assertions, write reports"
  ),
  Command.withExamples([
    {
      command: "testbed run fixtures/experiments/quickstart.yaml",
      description: "The quickstart: a TCP echo pair, under a minute"
    },
    {
      command: "testbed run fixtures/experiments/tls-interop.yaml --concurrency 2",
      description: "OpenSSL × GnuTLS matrix"
    },
    { command: "testbed run my.yaml --dry-run", description: "Report every problem in the file, run nothing" },
    { command: "testbed run my.yaml --json | jq .reports", description: "The summary for a CI script" },
    { command: "testbed run my.yaml --events - | jq -c .type", description: "The event log, live, as JSON lines" },
    {
      command: "testbed run my.yaml --metrics-interval 1s --metrics-port 9464",
      description: "Sample each service's resources; Prometheus scrapes 127.0.0.1:9464/metrics"
    }
  ])
)
