/**
 * What `testbed run --json` prints: one JSON document a CI script reads instead of parsing text — how the run
 * ended, the count per status, each test, the reports written and the exit code the process ends with.
 */
import { ExitCode } from "@testbed/events"
import type { Problems } from "@testbed/plugins"
import type { Outcome } from "./Experiment.ts"
import { succeeded } from "./ExperimentManager.ts"

export interface RunSummary {
  readonly ok: boolean
  readonly exitCode: number
  /** `completed`, `failed`, `finished_early`, `interrupted`, or `incomplete` when the run left no result. */
  readonly status: string
  readonly reason: string | null
  readonly runDir: string
  readonly counts: Readonly<Record<string, number>>
  readonly tests: ReadonlyArray<{
    readonly name: string
    readonly status: string
    readonly attempts: number
    readonly flaky: boolean
    readonly reason: string | null
  }>
  readonly reports: ReadonlyArray<string>
  readonly html: string | null
  readonly eventLog: string
}

/** The summary of a run that ended (a test failing is an ending too). */
export const of = (outcome: Outcome, eventLog: string): RunSummary => {
  const result = outcome.result
  const tests = (result?.tests ?? []).map((test) => ({
    name: test.name,
    status: test.status,
    attempts: test.attempts,
    flaky: test.flaky,
    reason: test.reason ?? null
  }))
  const counts: Record<string, number> = {}
  for (const test of tests) {
    const key = test.flaky ? "flaky" : test.status
    counts[key] = (counts[key] ?? 0) + 1
  }
  const ok = result !== undefined && succeeded(result)
  return {
    ok,
    exitCode: ok ? ExitCode.passed : ExitCode.testFailed,
    status: result?.status ?? "incomplete",
    reason: result?.reason ?? null,
    runDir: outcome.runDir,
    counts,
    tests,
    reports: outcome.reports,
    html: outcome.html ?? null,
    eventLog
  }
}

/** What `--json` prints for a file with problems (exit code 2): each with its place in the file. */
export const ofProblems = (file: string, problems: ReadonlyArray<Problems.Problem>) => ({
  ok: false,
  exitCode: ExitCode.usage,
  file,
  problems: problems.map((problem) => ({
    path: problem.path,
    message: problem.message,
    line: problem.line ?? null,
    column: problem.column ?? null
  }))
})
