/**
 * The summary of one run of an experiment, folded from its event log. Its JSON form is `experiment_summary.json`:
 * the fields of the older tool (COMPAT.md §3, snake_case, same meaning) come first so its consumers keep working;
 * the rest (attempts, flaky, unsupported, artifacts, log tails, service state histories, the matrices) is ours.
 */
import { Effect, Schema } from "effect"
import { TestEvent } from "@testbed/events"

/** Final status of a test. `flaky`: passed after at least one failed attempt. `unsupported` is never a failure. */
export const Status = Schema.Literals([...TestEvent.TestStatus.literals, "flaky"])
export type Status = typeof Status.Type

/** Every status, in the order reports list them. */
export const statuses: ReadonlyArray<Status> = [
  "passed",
  "flaky",
  "failed",
  "timeout",
  "interrupted",
  "unschedulable",
  "runner_lost",
  "unsupported",
  "skipped"
]

/** Status of one attempt, as emitted by `test.finished` (interrupted when the log ends before it). */
export const AttemptStatus = TestEvent.TestStatus
export type AttemptStatus = typeof AttemptStatus.Type

/** How the run as a whole ended; `interrupted` when the log ends without `experiment.finished`. */
export const RunStatus = Schema.Literals(["completed", "failed", "finished_early", "interrupted"])
export type RunStatus = typeof RunStatus.Type

/** One move of a state machine, as recorded by a `<entity>.state_changed` event. */
export const StateChange = Schema.Struct({
  from: Schema.String,
  to: Schema.String,
  trigger: Schema.String,
  timestamp: Schema.String,
  /** The test attempt the move happened in, when it belongs to a test. */
  attempt: Schema.NullOr(Schema.Int)
})
export type StateChange = typeof StateChange.Type

export const StepResult = Schema.Struct({
  index: Schema.Int,
  kind: Schema.String,
  description: Schema.NullOr(Schema.String),
  /** `running` when the log ends before the step finished. */
  status: Schema.Literals(["passed", "failed", "timeout", "interrupted", "running"]),
  duration_ms: Schema.NullOr(Schema.Finite),
  message: Schema.NullOr(Schema.String),
  /** The step's own output files (relative to the run directory), found for steps that did not pass. */
  logs: Schema.Array(Schema.String)
})
export type StepResult = typeof StepResult.Type

export const AssertionResult = Schema.Struct({
  index: Schema.Int,
  kind: Schema.String,
  passed: Schema.Boolean,
  message: Schema.NullOr(Schema.String),
  /** For a failed output assertion: the files it read (relative to the run directory). */
  logs: Schema.Array(Schema.String)
})
export type AssertionResult = typeof AssertionResult.Type

/** A file a test left behind, by reference (never inlined): logs, captures, replay scripts, agent feedback… */
export const ArtifactRef = Schema.Struct({
  name: Schema.String,
  kind: TestEvent.ArtifactKind,
  path: Schema.String,
  service: Schema.NullOr(Schema.String),
  description: Schema.NullOr(Schema.String),
  attempt: Schema.NullOr(Schema.Int)
})
export type ArtifactRef = typeof ArtifactRef.Type

/**
 * The end of one log file of a failed attempt, read when the report was written, so a reader sees why the test
 * failed without opening files. Bounded: at most `Evidence.tailBytes` bytes and `Evidence.tailLines` lines.
 */
export const LogTail = Schema.Struct({
  /** What the file is: `client stdout`, `step probe stderr`. */
  name: Schema.String,
  /** Relative to the run directory, as the event log names it. */
  path: Schema.String,
  stream: Schema.Literals(["stdout", "stderr", "log"]),
  /** Size of the whole file. */
  bytes: Schema.Int,
  /** Bytes before the tail, not shown (0: the whole file is shown). */
  omitted_bytes: Schema.Int,
  /** The last lines as text: invalid UTF-8 replaced, terminal colour codes removed. */
  text: Schema.String
})
export type LogTail = typeof LogTail.Type

export const Attempt = Schema.Struct({
  attempt: Schema.Int,
  status: AttemptStatus,
  start_time: Schema.NullOr(Schema.String),
  end_time: Schema.NullOr(Schema.String),
  duration_ms: Schema.Finite,
  error_message: Schema.NullOr(Schema.String),
  logs_path: Schema.NullOr(Schema.String),
  fast_fail_triggered: Schema.Boolean,
  /** False when the log ended before `test.finished` for this attempt. */
  finished: Schema.Boolean,
  /** A cluster run's: the runner that ran the attempt and its host (absent in a local run). */
  runner: Schema.optionalKey(Schema.String),
  host: Schema.optionalKey(Schema.String),
  steps: Schema.Array(StepResult),
  assertions: Schema.Array(AssertionResult),
  /** Tails of the logs of an attempt that did not pass (empty for attempts that passed). */
  log_tails: Schema.Array(LogTail)
})
export type Attempt = typeof Attempt.Type

export const Participant = Schema.Struct({
  service: Schema.String,
  implementation: Schema.String,
  type: Schema.Literals(["iut", "tester"]),
  role: Schema.NullOr(Schema.Literals(["server", "client"])),
  version: Schema.NullOr(Schema.String)
})
export type Participant = typeof Participant.Type

/** A stage's picture: a self-contained SVG (embedded as an image, so nothing in it can run). */
export const Topology = Schema.Struct({ name: Schema.String, svg: Schema.String })
export type Topology = typeof Topology.Type

/** Where a test sits in a matrix; `name` tells matrices apart (null: the run's one unnamed matrix). */
export const MatrixPosition = Schema.Struct({
  row: Schema.String,
  column: Schema.String,
  name: Schema.NullOr(Schema.String)
})
export type MatrixPosition = typeof MatrixPosition.Type

export const TestResult = Schema.Struct({
  // the older tool's fields
  name: Schema.String,
  status: Status,
  /** Seconds, summed over attempts. */
  duration: Schema.Finite,
  start_time: Schema.NullOr(Schema.String),
  end_time: Schema.NullOr(Schema.String),
  error_message: Schema.NullOr(Schema.String),
  logs_path: Schema.NullOr(Schema.String),
  fast_fail_triggered: Schema.Boolean,
  // ours
  description: Schema.NullOr(Schema.String),
  matrix: Schema.NullOr(MatrixPosition),
  participants: Schema.Array(Participant),
  retries: Schema.Int,
  flaky: Schema.Boolean,
  /** Services that declared they cannot do this test. */
  unsupported_by: Schema.Array(Schema.String),
  /** The last state of the test machine seen in the log. */
  last_state: Schema.NullOr(Schema.String),
  attempts: Schema.Array(Attempt),
  artifacts: Schema.Array(ArtifactRef),
  services: Schema.Array(Schema.String)
})
export type TestResult = typeof TestResult.Type

/** One point of a service's resource time series: time since its first sample, memory and CPU then. */
export const ResourcePoint = Schema.Struct({ at_ms: Schema.Finite, rss_bytes: Schema.Int, cpu_ms: Schema.Finite })
export type ResourcePoint = typeof ResourcePoint.Type

/** What one service used, folded from its `service.resources` samples (peaks and totals over every attempt). */
export const ServiceResources = Schema.Struct({
  samples: Schema.Int,
  source: Schema.String,
  peak_rss_bytes: Schema.Int,
  cpu_ms: Schema.Finite,
  peak_threads: Schema.Int,
  peak_open_files: Schema.Int,
  peak_processes: Schema.Int,
  read_bytes: Schema.Int,
  write_bytes: Schema.Int,
  /** At most `Resources.maxSeriesPoints` points, thinned evenly when there were more samples. */
  series: Schema.Array(ResourcePoint)
})
export type ServiceResources = typeof ServiceResources.Type

/**
 * PANTHER's `resources` block: peak memory (the highest peak of any one service), disk usage of the run directory,
 * images built, total log size; null where the run did not measure it (no sampling, an older log).
 */
export const Resources = Schema.Struct({
  peak_memory_mb: Schema.NullOr(Schema.Finite),
  disk_usage_mb: Schema.NullOr(Schema.Finite),
  docker_images_built: Schema.NullOr(Schema.Int),
  total_log_size_mb: Schema.NullOr(Schema.Finite),
  peak_memory_bytes: Schema.NullOr(Schema.Int),
  disk_usage_bytes: Schema.NullOr(Schema.Int),
  total_log_size_bytes: Schema.NullOr(Schema.Int),
  /** CPU time of every sampled service, summed. */
  cpu_time_ms: Schema.NullOr(Schema.Finite)
})
export type Resources = typeof Resources.Type

export const ServiceResult = Schema.Struct({
  // the older tool's fields
  service_name: Schema.String,
  service_type: Schema.NullOr(Schema.Literals(["iut", "tester"])),
  /** The last state of the service machine seen in the log (e.g. DESTROYED, ERROR). */
  status: Schema.String,
  exit_code: Schema.NullOr(Schema.Int),
  crashed: Schema.Boolean,
  // ours
  test: Schema.String,
  implementation: Schema.NullOr(Schema.String),
  role: Schema.NullOr(Schema.Literals(["server", "client"])),
  signal: Schema.NullOr(Schema.String),
  unsupported: Schema.Boolean,
  starts: Schema.Int,
  started_at: Schema.NullOr(Schema.String),
  exited_at: Schema.NullOr(Schema.String),
  state_history: Schema.Array(StateChange),
  /** The limit of its execution environment that ended it (`its memory limit (64.0 MB)`), when one did. */
  killed_by: Schema.optionalKey(Schema.String),
  /** Present when the service was sampled (`metrics:` or `--metrics-interval`). */
  resources: Schema.optionalKey(ServiceResources)
})
export type ServiceResult = typeof ServiceResult.Type

/** Counts per final status; they always add up to `total`. */
export const Tests = Schema.Struct({
  total: Schema.Int,
  passed: Schema.Int,
  failed: Schema.Int,
  skipped: Schema.Int,
  timeout: Schema.Int,
  interrupted: Schema.Int,
  unsupported: Schema.Int,
  flaky: Schema.Int,
  /** Cluster runs: no runner had the labels (0 when read from a summary of an older version). */
  unschedulable: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
  /** Cluster runs: the log ends after a lost runner, before its re-run (0 when read from an older summary). */
  runner_lost: Schema.Int.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
  /** Percent of passed (flaky included) among tests that reached a verdict (not skipped, not unsupported). */
  success_rate: Schema.Finite,
  results: Schema.Array(TestResult)
})
export type Tests = typeof Tests.Type

export const FastFail = Schema.Struct({
  enabled: Schema.NullOr(Schema.Boolean),
  triggered: Schema.Boolean,
  triggered_by: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String)
})
export type FastFail = typeof FastFail.Type

export const MatrixCell = Schema.Struct({
  row: Schema.String,
  column: Schema.String,
  tests: Schema.Array(Schema.String),
  /** The worst status among the cell's tests. */
  status: Status
})
export type MatrixCell = typeof MatrixCell.Type

/** One matrix: servers × clients (or implementations × tests), from the positions its tests declared. */
export const Matrix = Schema.Struct({
  name: Schema.NullOr(Schema.String),
  /** What the rows and columns are (`server`, `client`) when every test of the matrix says so; else null. */
  row_axis: Schema.NullOr(Schema.String),
  column_axis: Schema.NullOr(Schema.String),
  rows: Schema.Array(Schema.String),
  columns: Schema.Array(Schema.String),
  cells: Schema.Array(MatrixCell)
})
export type Matrix = typeof Matrix.Type

export const ReportMetadata = Schema.Struct({
  generator: Schema.String,
  format_version: Schema.Int,
  generated_at: Schema.String,
  event_log: Schema.NullOr(Schema.String),
  events_total: Schema.Int,
  /** Events of types this version does not know (a newer log): skipped, counted. */
  events_unknown: Schema.Int,
  unknown_event_types: Schema.Array(Schema.String),
  /** Events of a known type whose payload did not decode: skipped, counted. */
  events_invalid: Schema.Int
})
export type ReportMetadata = typeof ReportMetadata.Type

export const ExperimentSummary = Schema.Struct({
  // the older tool's fields
  experiment_id: Schema.String,
  status: RunStatus,
  start_time: Schema.NullOr(Schema.String),
  end_time: Schema.NullOr(Schema.String),
  duration_seconds: Schema.Finite,
  configuration_file: Schema.NullOr(Schema.String),
  tests: Tests,
  fast_fail: FastFail,
  services: Schema.Array(ServiceResult),
  report_metadata: ReportMetadata,
  // ours
  experiment_name: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  output_dir: Schema.NullOr(Schema.String),
  settings: Schema.Record(Schema.String, Schema.Unknown),
  /** One per matrix, in the order their first test was declared; empty when no test declared a position. */
  matrices: Schema.Array(Matrix),
  state_history: Schema.Array(StateChange),
  /** The OpenTelemetry trace id of the run, when it was exported (`--otlp`). */
  trace_id: Schema.optionalKey(Schema.String),
  /** PANTHER's resources block (always written by this version; absent in summaries of older ones). */
  resources: Schema.optionalKey(Resources),
  /** Pictures of the stages the run used (`stage.graph` events), present only when there are some. */
  topologies: Schema.optionalKey(Schema.Array(Topology))
})
export type ExperimentSummary = typeof ExperimentSummary.Type

/** Statuses from best to worst, to colour a matrix cell holding several tests. */
const severity: Record<Status, number> = {
  passed: 0,
  skipped: 1,
  unsupported: 2,
  flaky: 3,
  interrupted: 4,
  runner_lost: 4,
  unschedulable: 4,
  timeout: 5,
  failed: 6
}

export const worst = (all: ReadonlyArray<Status>): Status =>
  all.reduce<Status>((acc, s) => (severity[s] > severity[acc] ? s : acc), all[0] ?? "skipped")

/** True when the run should make a CI job fail: a failure, a timeout or an interruption. */
export const isFailing = (summary: ExperimentSummary): boolean =>
  summary.tests.failed +
    summary.tests.timeout +
    summary.tests.interrupted +
    summary.tests.unschedulable +
    summary.tests.runner_lost >
    0 || summary.status !== "completed"

/** Whether a final status is a failure a person must look at (what `isFailing` counts). */
export const isFailure = (status: Status | AttemptStatus): boolean =>
  status === "failed" || status === "timeout" || status === "interrupted" || status === "unschedulable"

/** The version of `experiment_summary.json` this module writes (2: matrices, log tails, step and assertion logs). */
export const formatVersion = 2
