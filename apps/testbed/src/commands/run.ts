/**
 * `testbed run CONFIG [--output-dir DIR] [--dry-run] [--filter NAME] [--concurrency N] [--retries N] [--plugins DIR]`:
 * runs an experiment file and points at its HTML report. Exit 0 only when every test passed (skipped and
 * unsupported do not fail a run), 1 when one did not, 2 when the file has problems.
 */
import { ExitCode } from "@testbed/events"
import type { Experiment } from "@testbed/experiments"
import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"
import { clusterFlags, onCluster } from "./runCluster.ts"

const optionalValue = <A>(option: Option.Option<A>): A | undefined => Option.getOrUndefined(option)

// The experiment manager (and through it every library) is loaded when the command runs, not for `run --help`.
const libraries = Effect.promise(() =>
  Promise.all([import("@testbed/experiments"), import("@testbed/plugins")]).then(([experiments, plugins]) => ({
    ...experiments,
    Problems: plugins.Problems
  }))
)

export const runCommand = Command.make(
  "run",
  {
    config: Argument.File("CONFIG", { mustExist: true }).pipe(Argument.withDescription("The experiment file (YAML)")),
    outputDir: Flag.String("output-dir").pipe(
      Flag.withDescription("Where the run directory is created (default: the file's paths.output_dir, else ./outputs)"),
      Flag.optional
    ),
    dryRun: Flag.Boolean("dry-run").pipe(
      Flag.withDescription("Check the file and the plugins, list the tests, run nothing"),
      Flag.withDefault(false)
    ),
    filter: Flag.String("filter").pipe(
      Flag.withDescription("Run only tests whose name contains this text"),
      Flag.optional
    ),
    concurrency: Flag.Int("concurrency").pipe(Flag.withDescription("Tests run side by side at most"), Flag.optional),
    retries: Flag.Int("retries").pipe(Flag.withDescription("Extra attempts for a failing test"), Flag.optional),
    plugins: Flag.String("plugins").pipe(
      Flag.withDescription("A directory of plugin modules to load (repeatable)"),
      Flag.atLeast(0)
    ),
    plain: Flag.Boolean("plain").pipe(
      Flag.withDescription("Plain progress lines even on a terminal"),
      Flag.withDefault(false)
    ),
    ...clusterFlags
  },
  Effect.fn(function* ({ config, outputDir, dryRun, filter, concurrency, retries, plugins, plain, ...cluster }) {
    const { Experiment, ExperimentManager, Problems } = yield* libraries
    const options: Experiment.Options = {
      outputDir: optionalValue(outputDir),
      filter: optionalValue(filter),
      concurrency: optionalValue(concurrency),
      retries: optionalValue(retries),
      pluginDirectories: plugins,
      ...(plain ? { progress: "plain" as const } : {})
    }
    const prepared = yield* Experiment.prepare(config, options).pipe(
      Effect.catchTag("ExperimentConfigInvalid", (error) =>
        Effect.andThen(
          Console.error(`${error.file}: ${error.problems.length} problem(s)\n${Problems.format(error.problems)}`),
          Effect.fail(new ExitWith({ code: ExitCode.ofError(error) }))
        )
      )
    )
    if (dryRun) {
      const plan = prepared.plan
      yield* Console.log(
        `${config}: OK — experiment "${plan.name}", ${plan.tests.length} test(s), concurrency ${plan.concurrency}`
      )
      for (const test of plan.tests) {
        const services =
          test.services.length > 0
            ? test.services.map((s) => `${s.key}=${s.plugin.name}/${s.role}`).join(", ")
            : `steps only (${test.steps.length})`
        yield* Console.log(
          `  ${test.name} [${test.environment}] ${services}${test.retries > 0 ? ` retries=${test.retries}` : ""}`
        )
      }
      return
    }
    const outcome = yield* onCluster(cluster, config, plugins, Experiment.runPrepared(prepared, options))
    const result = outcome.result
    if (result !== undefined) {
      const counts = new Map<string, number>()
      for (const test of result.tests) {
        const key = test.flaky ? "flaky" : test.status
        counts.set(key, (counts.get(key) ?? 0) + 1)
      }
      yield* Console.log(
        `${result.tests.length} test(s): ${[...counts].map(([status, count]) => `${count} ${status}`).join(", ")}`
      )
    }
    yield* Console.log(outcome.html === undefined ? `Run directory: ${outcome.runDir}` : `HTML report: ${outcome.html}`)
    if (result === undefined || !ExperimentManager.succeeded(result)) {
      return yield* new ExitWith({
        code: ExitCode.testFailed,
        ...(result === undefined ? { message: "the run did not complete" } : {})
      })
    }
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
    { command: "testbed run my.yaml --dry-run", description: "Report every problem in the file, run nothing" }
  ])
)
