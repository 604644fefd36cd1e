/**
 * `testbed run CONFIG [--output-dir DIR] [--dry-run] [--filter NAME] [--concurrency N] [--retries N] [--plugins DIR]`:
 * runs an experiment file and points at its HTML report. Exit 0 only when every test passed (skipped and
 * unsupported do not fail a run), 1 when one did not, 2 when the file has problems. `--json` prints one summary
 * document (RunSummary) instead of text; `--events -` streams the event log to stdout as JSON lines.
 */
// The one module of @testbed/events the CLI needs before a command runs (its index loads every event family).
import * as ExitCode from "@testbed/events/ExitCode"
import type { Experiment } from "@testbed/experiments"
import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"

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
      Flag.withDescription(
        "Check the file, the plugins and what this machine must have (programs on PATH, docker images), list the tests, run nothing"
      ),
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
    json: Flag.Boolean("json").pipe(
      Flag.withDescription(
        "Print one JSON document on stdout at the end (status, counts, tests, report paths, exit code); no progress"
      ),
      Flag.withDefault(false)
    ),
    events: Flag.String("events").pipe(
      Flag.withDescription("--events - streams the event log to stdout as JSON lines while the run goes on"),
      Flag.optional
    )
  },
  Effect.fn(function* ({ config, outputDir, dryRun, filter, concurrency, retries, plugins, plain, json, events }) {
    const stream = optionalValue(events)
    if (stream !== undefined && stream !== "-")
      return yield* new ExitWith({
        code: ExitCode.usage,
        message: `--events takes - (stdout); the run directory keeps the log in events.jsonl, not ${stream}`
      })
    if (stream !== undefined && json)
      return yield* new ExitWith({
        code: ExitCode.usage,
        message: "--json and --events - both write to stdout: pick one"
      })
    const { Experiment, ExperimentManager, Problems, RunSummary } = yield* libraries
    const progress = stream !== undefined ? "events" : json ? "none" : plain ? "plain" : undefined
    const options: Experiment.Options = {
      outputDir: optionalValue(outputDir),
      filter: optionalValue(filter),
      concurrency: optionalValue(concurrency),
      retries: optionalValue(retries),
      pluginDirectories: plugins,
      ...(progress === undefined ? {} : { progress })
    }
    const prepared = yield* (dryRun ? Experiment.dryRun(config, options) : Experiment.prepare(config, options)).pipe(
      Effect.catchTag("ExperimentConfigInvalid", (error) =>
        Effect.andThen(
          Effect.andThen(
            Console.error(
              `${error.file}: ${error.problems.length} problem(s)\n${Problems.format(error.problems, error.file)}`
            ),
            json ? Console.log(JSON.stringify(RunSummary.ofProblems(error.file, error.problems))) : Effect.void
          ),
          Effect.fail(new ExitWith({ code: ExitCode.ofError(error) }))
        )
      )
    )
    if (dryRun) {
      const plan = prepared.plan
      if (json) {
        return yield* Console.log(
          JSON.stringify({
            ok: true,
            exitCode: ExitCode.passed,
            file: config,
            experiment: plan.name,
            concurrency: plan.concurrency,
            tests: plan.tests.map((test) => ({
              name: test.name,
              environment: test.environment,
              services: test.services.map((s) => ({ key: s.key, plugin: s.plugin.name, role: s.role })),
              steps: test.steps.length,
              retries: test.retries
            }))
          })
        )
      }
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
    const outcome = yield* Experiment.runPrepared(prepared, options)
    const result = outcome.result
    if (json) {
      const summary = RunSummary.of(outcome, `${outcome.runDir}/events.jsonl`)
      yield* Console.log(JSON.stringify(summary))
      if (!summary.ok) return yield* new ExitWith({ code: summary.exitCode })
      return
    }
    // With --events -, stdout carries only the event log: the human lines go to stderr.
    const say = stream === undefined ? Console.log : Console.error
    if (result !== undefined) {
      const counts = new Map<string, number>()
      for (const test of result.tests) {
        const key = test.flaky ? "flaky" : test.status
        counts.set(key, (counts.get(key) ?? 0) + 1)
      }
      yield* say(
        `${result.tests.length} test(s): ${[...counts].map(([status, count]) => `${count} ${status}`).join(", ")}`
      )
    }
    yield* say(outcome.html === undefined ? `Run directory: ${outcome.runDir}` : `HTML report: ${outcome.html}`)
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
    { command: "testbed run my.yaml --dry-run", description: "Report every problem in the file, run nothing" },
    { command: "testbed run my.yaml --json | jq .reports", description: "The summary for a CI script" },
    { command: "testbed run my.yaml --events - | jq -c .type", description: "The event log, live, as JSON lines" }
  ])
)
