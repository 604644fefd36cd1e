/** The flags of `testbed run`, and the checks that need no library (so `run --help` loads none). */
import * as ExitCode from "@testbed/events/ExitCode"
import { Effect, Option } from "effect"
import { Argument, Flag } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"
import { clusterFlags } from "./runCluster.ts"

export const runFlags = {
  config: Argument.File("CONFIG", { mustExist: true }).pipe(
    Argument.withDescription("The experiment file (YAML); with --resume RUNDIR, the run's own when not given"),
    Argument.optional
  ),
  outputDir: Flag.String("output-dir").pipe(
    Flag.withDescription("Where the run directory is created (default: the file's paths.output_dir, else ./outputs)"),
    Flag.optional
  ),
  dryRun: Flag.Boolean("dry-run").pipe(
    Flag.withDescription(
      "Check the file, the plugins and what this machine must have (programs on PATH, docker images, execution tools), list the tests, run nothing"
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
  ),
  metricsPort: Flag.Int("metrics-port").pipe(
    Flag.withDescription("Serve live metrics (Prometheus text format) on 127.0.0.1:PORT/metrics while the run lasts"),
    Flag.optional
  ),
  otlp: Flag.String("otlp").pipe(
    Flag.withDescription(
      "Export the run as an OpenTelemetry trace to this OTLP/HTTP URL (e.g. http://127.0.0.1:4318/v1/traces)"
    ),
    Flag.optional
  ),
  // Read as text and decoded once the libraries are loaded, so `run --help` loads none of them.
  metricsInterval: Flag.String("metrics-interval").pipe(
    Flag.withDescription(
      "Sample each service's CPU, memory, threads, files and I/O this often (seconds, or e.g. 500ms, 2s; overrides the file's metrics.interval)"
    ),
    Flag.optional
  ),
  ...clusterFlags
}

/** Where the run's live output goes: `--events -` (the log on stdout), `--json` (nothing until the end), else text. */
export type Stdout = "events" | "json" | "text"

/** `--events` takes only `-`, and not beside `--json` (both would write to stdout). */
export const stdoutOf = Effect.fn("RunFlags.stdoutOf")(function* (events: Option.Option<string>, json: boolean) {
  const stream = Option.getOrUndefined(events)
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
  return (stream !== undefined ? "events" : json ? "json" : "text") satisfies Stdout as Stdout
})
