// Turns the folded state into an ExperimentSummary: final statuses (flaky, interrupted for a cut-off log, skipped for
// tests that never started), counts, the matrix and the metadata.
import * as RS from "../ExperimentSummary.ts"
import type { AttemptAcc, ServiceAcc, State, TestAcc } from "./fold.ts"
import { matricesOf } from "./matrices.ts"
import * as Usage from "./resources.ts"

export interface Meta {
  readonly generatedAt: string
  readonly eventLog: string | null
}

const millisBetween = (from: string | null, to: string | null): number => {
  if (from === null || to === null) return 0
  const d = Date.parse(to) - Date.parse(from)
  return Number.isFinite(d) && d > 0 ? d : 0
}

const round = (n: number, digits: number): number => {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

const attemptResult = (a: AttemptAcc, state: State, lastState: string | null): RS.Attempt => {
  const finished = a.status !== null
  const end = finished ? a.end_time : state.lastTimestamp
  const where = lastState === null ? "" : ` (test state ${lastState})`
  return {
    attempt: a.attempt,
    status: a.status ?? "interrupted",
    start_time: a.start_time,
    end_time: end,
    duration_ms: finished ? a.duration_ms : millisBetween(a.start_time, end),
    error_message: finished ? a.error_message : `the event log ends before attempt ${a.attempt} finished${where}`,
    logs_path: a.logs_path,
    fast_fail_triggered: a.fast_fail_triggered,
    finished,
    ...(a.host === null ? {} : { host: a.host, ...(a.runner === null ? {} : { runner: a.runner }) }),
    steps: [...a.steps.values()].sort((x, y) => x.index - y.index),
    assertions: [...a.assertions.values()].sort((x, y) => x.index - y.index),
    // Read from the run directory afterwards (`Evidence.attach`): folding touches no file.
    log_tails: []
  }
}

const failedAttempt = (a: RS.Attempt) => a.status === "failed" || a.status === "timeout"

const finalStatus = (
  attempts: ReadonlyArray<RS.Attempt>,
  last: AttemptAcc | undefined,
  cutOff: boolean
): { status: RS.Status; message: string | null } => {
  const final = attempts[attempts.length - 1]
  if (final === undefined || last === undefined) {
    return {
      status: "skipped",
      message: cutOff ? "not run: the event log ends before this test started" : "not run"
    }
  }
  if (final.finished && last.willRetry) {
    return {
      status: "interrupted",
      message: `attempt ${final.attempt} was to be retried, but the ${cutOff ? "event log ends" : "run finished"} first`
    }
  }
  if (final.status === "passed" && attempts.some(failedAttempt)) return { status: "flaky", message: null }
  return { status: final.status, message: final.status === "passed" ? null : final.error_message }
}

const testResult = (t: TestAcc, state: State, cutOff: boolean): RS.TestResult => {
  const attempts = t.attempts.map((a) => attemptResult(a, state, t.lastState))
  const { message, status } = finalStatus(attempts, t.attempts[t.attempts.length - 1], cutOff)
  const first = attempts[0]
  const final = attempts[attempts.length - 1]
  const logs = final?.logs_path ?? t.artifacts.find((a) => a.kind === "log")?.path ?? null
  return {
    name: t.name,
    status,
    duration: round(attempts.reduce((sum, a) => sum + a.duration_ms, 0) / 1000, 3),
    start_time: first?.start_time ?? first?.end_time ?? null,
    end_time: final?.end_time ?? null,
    error_message: message,
    logs_path: logs,
    fast_fail_triggered: attempts.some((a) => a.fast_fail_triggered),
    description: t.description,
    matrix: t.matrix,
    participants: t.participants,
    // A cluster run whose runner was lost is an infrastructure retry, not one of the test's retries.
    retries: Math.max(0, attempts.filter((a) => a.status !== "runner_lost").length - 1),
    flaky: status === "flaky",
    unsupported_by: t.unsupportedBy,
    last_state: t.lastState,
    attempts,
    artifacts: t.artifacts,
    services: t.services
  }
}

const serviceResult = (s: ServiceAcc): RS.ServiceResult => ({
  service_name: s.name,
  service_type: s.type,
  status: s.history[s.history.length - 1]?.to ?? (s.exited ? "EXITED" : s.starts > 0 ? "STARTED" : "UNKNOWN"),
  exit_code: s.exitCode,
  crashed: s.crashed,
  test: s.test,
  implementation: s.implementation,
  role: s.role,
  signal: s.signal,
  unsupported: s.unsupported,
  starts: s.starts,
  started_at: s.startedAt,
  exited_at: s.exitedAt,
  state_history: s.history,
  ...(s.killedBy === undefined ? {} : { killed_by: s.killedBy }),
  ...(s.usage === undefined ? {} : { resources: Usage.serviceResources(s.usage) })
})

// The older tool kept `fast_fail.enabled` in its configuration; ours arrives in the experiment's settings.
const fastFailEnabled = (settings: Record<string, unknown>): boolean | null => {
  const value = settings.fastFail ?? settings.fast_fail
  if (typeof value === "boolean") return value
  if (typeof value === "object" && value !== null && "enabled" in value && typeof value.enabled === "boolean") {
    return value.enabled
  }
  return null
}

/** Counts per final status (they add up to the total) and the success rate. */
export const countTests = (results: ReadonlyArray<RS.TestResult>): RS.Tests => {
  const counts: Record<RS.Status, number> = {
    passed: 0,
    failed: 0,
    skipped: 0,
    timeout: 0,
    interrupted: 0,
    unsupported: 0,
    flaky: 0,
    runner_lost: 0,
    unschedulable: 0
  }
  for (const r of results) counts[r.status]++
  const verdicts = results.length - counts.skipped - counts.unsupported
  return {
    total: results.length,
    ...counts,
    success_rate: verdicts === 0 ? 0 : round(((counts.passed + counts.flaky) / verdicts) * 100, 2),
    results
  }
}

export const finish = (state: State, meta: Meta): RS.ExperimentSummary => {
  const cutOff = state.finished === null
  const results = [...state.tests.values()].map((t) => testResult(t, state, cutOff))
  const startTime = state.started?.timestamp ?? state.firstTimestamp
  const endTime = state.finished?.timestamp ?? state.lastTimestamp
  const settings = state.started?.data.settings ?? {}
  const triggeredBy = results.find((r) => r.fast_fail_triggered)?.name ?? null
  const triggered = state.finished?.data.fastFailTriggered === true || triggeredBy !== null
  return {
    experiment_id: state.started?.entityId ?? "unknown",
    status: state.finished?.data.status ?? "interrupted",
    start_time: startTime,
    end_time: endTime,
    duration_seconds: round(millisBetween(startTime, endTime) / 1000, 3),
    configuration_file: state.started?.data.configurationFile ?? null,
    tests: countTests(results),
    fast_fail: {
      enabled: fastFailEnabled(settings),
      triggered,
      triggered_by: triggeredBy,
      reason: triggered ? (state.finished?.data.reason ?? null) : null
    },
    services: [...state.services.values()].map(serviceResult),
    report_metadata: {
      generator: "testbed",
      format_version: RS.formatVersion,
      generated_at: meta.generatedAt,
      event_log: meta.eventLog,
      events_total: state.total,
      events_unknown: state.unknown,
      unknown_event_types: [...state.unknownTypes].sort(),
      events_invalid: state.invalid
    },
    experiment_name: state.started?.data.name ?? null,
    reason: state.finished?.data.reason ?? (cutOff ? "the event log ends before experiment.finished" : null),
    output_dir: state.started?.data.outputDir ?? null,
    settings,
    matrices: matricesOf(results),
    state_history: state.history,
    ...(state.traceId === undefined ? {} : { trace_id: state.traceId }),
    resources: Usage.runResources(
      state.run,
      [...state.services.values()].flatMap((s) => (s.usage === undefined ? [] : [s.usage]))
    ),
    ...(state.topologies.length === 0 ? {} : { topologies: state.topologies })
  }
}
