/**
 * `ctrf-report.json`: the Common Test Report Format (https://ctrf.io, spec 0.0.0). CTRF has five statuses, so
 * ours map onto them and the original is kept in `rawStatus`: flaky → passed with `flaky: true`, timeout → failed,
 * unsupported → skipped, interrupted → other.
 */
import { concat } from "./internal/chunks.ts"
import { pieces } from "./internal/json.ts"
import * as Tails from "./internal/tails.ts"
import type { Attempt, ArtifactRef, ExperimentSummary, Status, TestResult } from "./ExperimentSummary.ts"

export const fileName = "ctrf-report.json"

type CtrfStatus = "passed" | "failed" | "skipped" | "pending" | "other"

const ctrfStatus: Record<Status | Attempt["status"], CtrfStatus> = {
  passed: "passed",
  flaky: "passed",
  failed: "failed",
  timeout: "failed",
  skipped: "skipped",
  unsupported: "skipped",
  interrupted: "other",
  runner_lost: "other",
  unschedulable: "other"
}

const epoch = (iso: string | null): number => {
  const ms = iso === null ? Number.NaN : Date.parse(iso)
  return Number.isFinite(ms) ? ms : 0
}

const contentTypes: ReadonlyArray<readonly [RegExp, string]> = [
  [/\.(pcap|pcapng)$/i, "application/vnd.tcpdump.pcap"],
  [/\.json$/i, "application/json"],
  [/\.jsonl$/i, "application/x-ndjson"],
  [/\.html?$/i, "text/html"],
  [/\.xml$/i, "application/xml"],
  [/\.(gz|tgz)$/i, "application/gzip"],
  [/\.(log|txt|keys|keylog|md|out|err)$/i, "text/plain"]
]

const contentType = (a: ArtifactRef): string =>
  contentTypes.find(([re]) => re.test(a.path))?.[1] ??
  (a.kind === "log" || a.kind === "keylog" || a.kind === "feedback" || a.kind === "profile"
    ? "text/plain"
    : "application/octet-stream")

const attachment = (a: ArtifactRef) => ({ name: a.name, contentType: contentType(a), path: a.path })

const optional = <K extends string, V>(key: K, value: V | null): { [P in K]?: V } =>
  (value === null ? {} : { [key]: value }) as { [P in K]?: V }

const lines = (text: string): ReadonlyArray<string> => (text === "" ? [] : text.replace(/\n$/, "").split("\n"))

/** `trace` (the tails that explain the failure), `stdout` and `stderr` (the attempt's tails by stream). */
const evidence = (explaining: Attempt | undefined, last: Attempt | undefined) => {
  if ((explaining?.log_tails.length ?? 0) === 0 && (last?.log_tails.length ?? 0) === 0) return {}
  const trace = explaining === undefined ? "" : Tails.plain(Tails.split(explaining).primary)
  const stdout = last === undefined ? [] : lines(Tails.plain(Tails.ofStream(last, ["stdout", "log"])))
  const stderr = last === undefined ? [] : lines(Tails.plain(Tails.ofStream(last, ["stderr"])))
  return {
    ...(trace === "" ? {} : { trace }),
    ...(stdout.length === 0 ? {} : { stdout }),
    ...(stderr.length === 0 ? {} : { stderr })
  }
}

const test = (t: TestResult, suite: string) => {
  const artifacts = t.artifacts
  return {
    name: t.name,
    status: ctrfStatus[t.status],
    duration: Math.round(t.duration * 1000),
    start: epoch(t.start_time),
    stop: epoch(t.end_time),
    suite: [suite],
    ...optional("message", t.error_message),
    ...evidence(Tails.failedAttempt(t), t.attempts[t.attempts.length - 1]),
    rawStatus: t.status,
    tags: t.participants.map((p) => p.implementation),
    type: t.matrix === null ? "experiment" : "interop",
    ...optional("filePath", t.logs_path),
    retries: t.retries,
    flaky: t.flaky,
    // CTRF numbers attempts from 1 in the order they ran, whatever numbering the run used.
    retryAttempts: t.attempts.map((a, i) => ({
      attempt: i + 1,
      status: ctrfStatus[a.status],
      duration: Math.round(a.duration_ms),
      ...optional("message", a.error_message),
      start: epoch(a.start_time),
      stop: epoch(a.end_time),
      ...evidence(a, a),
      attachments: artifacts.filter((x) => x.attempt === a.attempt).map(attachment),
      extra: { rawStatus: a.status, finished: a.finished }
    })),
    attachments: artifacts.map(attachment),
    ...(t.matrix === null ? {} : { parameters: { row: t.matrix.row, column: t.matrix.column } }),
    steps: (t.attempts[t.attempts.length - 1]?.steps ?? []).map((step) => ({
      name: `${step.index}: ${step.description ?? step.kind}`,
      status: step.status === "running" ? ("other" as const) : ctrfStatus[step.status],
      extra: { kind: step.kind, rawStatus: step.status, ...(step.logs.length === 0 ? {} : { logs: step.logs }) }
    })),
    extra: {
      participants: t.participants,
      unsupportedBy: t.unsupported_by,
      lastState: t.last_state
    }
  }
}

/** The document in pieces (one test at a time): a run of any size is written without one huge string. */
export function* chunks(s: ExperimentSummary): Generator<string> {
  const suite = s.experiment_name ?? s.experiment_id
  const report = {
    reportFormat: "CTRF",
    specVersion: "0.0.0",
    timestamp: s.report_metadata.generated_at,
    generatedBy: "testbed",
    results: {
      tool: { name: "testbed" },
      summary: {
        tests: s.tests.total,
        passed: s.tests.passed + s.tests.flaky,
        failed: s.tests.failed + s.tests.timeout,
        skipped: s.tests.skipped + s.tests.unsupported,
        pending: 0,
        other: s.tests.interrupted,
        flaky: s.tests.flaky,
        suites: 1,
        start: epoch(s.start_time),
        stop: epoch(s.end_time),
        duration: Math.round(s.duration_seconds * 1000),
        extra: {
          timeout: s.tests.timeout,
          interrupted: s.tests.interrupted,
          unsupported: s.tests.unsupported,
          successRate: s.tests.success_rate
        }
      },
      tests: s.tests.results.map((t) => test(t, suite)),
      environment: {
        reportName: suite,
        extra: {
          experimentId: s.experiment_id,
          status: s.status,
          configurationFile: s.configuration_file,
          outputDir: s.output_dir
        }
      },
      extra: { eventsTotal: s.report_metadata.events_total, eventsUnknown: s.report_metadata.events_unknown }
    }
  }
  yield* pieces(report)
  yield "\n"
}

export const render = (s: ExperimentSummary): string => concat(chunks(s))
