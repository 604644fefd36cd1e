/**
 * What changed between two runs of an experiment (a baseline and the current run), test by test, matched by name:
 * newly failing, newly passing, still failing, flaky, added, removed, and tests whose duration changed markedly.
 * A pure function of two summaries; `ComparisonReport` renders it as Markdown and HTML.
 */
import { Schema } from "effect"
import { type ExperimentSummary, isFailure, Status, type TestResult } from "./ExperimentSummary.ts"

/** One side of the comparison, by the facts a reader needs to recognise the run. */
export const RunRef = Schema.Struct({
  experiment_id: Schema.String,
  experiment_name: Schema.NullOr(Schema.String),
  start_time: Schema.NullOr(Schema.String),
  status: Schema.String,
  total: Schema.Int,
  success_rate: Schema.Finite,
  duration_seconds: Schema.Finite
})
export type RunRef = typeof RunRef.Type

/** A test whose outcome is reported: its status in each run (null: not in that run). */
export const Change = Schema.Struct({
  name: Schema.String,
  before: Schema.NullOr(Status),
  after: Schema.NullOr(Status),
  /** The current run's message (the baseline's for a removed test). */
  error_message: Schema.NullOr(Schema.String)
})
export type Change = typeof Change.Type

export const TimingChange = Schema.Struct({
  name: Schema.String,
  before_ms: Schema.Finite,
  after_ms: Schema.Finite
})
export type TimingChange = typeof TimingChange.Type

export const Comparison = Schema.Struct({
  baseline: RunRef,
  current: RunRef,
  /** Fails now; passed (or was not there) in the baseline. */
  newly_failing: Schema.Array(Change),
  /** Passes now (flaky included); failed in the baseline. */
  newly_passing: Schema.Array(Change),
  /** Failed in both. */
  still_failing: Schema.Array(Change),
  /** Passed only after a retry in either run, and does not fail now. */
  flaky: Schema.Array(Change),
  /** New in the current run and not failing. */
  added: Schema.Array(Change),
  /** In the baseline, not in the current run. */
  removed: Schema.Array(Change),
  /** Passed in both, and took markedly longer or shorter (see `timingThreshold`), largest change first. */
  timing: Schema.Array(TimingChange),
  /** Timing changes left out past `timingLimit`. */
  timing_left_out: Schema.Int,
  /** Tests in both runs with the same outcome and no marked timing change. */
  unchanged: Schema.Int
})
export type Comparison = typeof Comparison.Type

/** A duration change counts when it is at least this factor (either way) and at least `timingMinMs`. */
export const timingThreshold = 1.5
export const timingMinMs = 100
/** Timing changes listed, largest first. */
export const timingLimit = 50

const runRef = (s: ExperimentSummary): RunRef => ({
  experiment_id: s.experiment_id,
  experiment_name: s.experiment_name,
  start_time: s.start_time,
  status: s.status,
  total: s.tests.total,
  success_rate: s.tests.success_rate,
  duration_seconds: s.duration_seconds
})

const passes = (s: TestResult | undefined) => s !== undefined && (s.status === "passed" || s.status === "flaky")
const fails = (s: TestResult | undefined) => s !== undefined && isFailure(s.status)

type Category = Exclude<keyof Comparison, "baseline" | "current" | "timing" | "timing_left_out" | "unchanged">

/** Where one test goes: the first rule that holds, so every test is in one list at most. */
const categorize = (before: TestResult | undefined, after: TestResult | undefined): Category | null => {
  if (fails(after)) return fails(before) ? "still_failing" : "newly_failing"
  if (after?.status === "flaky" || (before?.status === "flaky" && after !== undefined)) return "flaky"
  if (fails(before) && passes(after)) return "newly_passing"
  if (before === undefined) return "added"
  if (after === undefined) return "removed"
  return null
}

const timingChange = (before: TestResult, after: TestResult): TimingChange | null => {
  if (before.status !== "passed" || after.status !== "passed") return null
  const a = before.duration * 1000
  const b = after.duration * 1000
  const marked = Math.abs(b - a) >= timingMinMs && Math.max(a, b) >= timingThreshold * Math.max(1, Math.min(a, b))
  return marked ? { name: after.name, before_ms: a, after_ms: b } : null
}

/** Every test of both runs: the current run's in its order, then those only in the baseline. */
const pairs = (baseline: ExperimentSummary, current: ExperimentSummary) => {
  const before = new Map(baseline.tests.results.map((t) => [t.name, t]))
  const out: Array<readonly [TestResult | undefined, TestResult | undefined]> = []
  for (const t of current.tests.results) out.push([before.get(t.name), t])
  const now = new Set(current.tests.results.map((t) => t.name))
  for (const t of baseline.tests.results) if (!now.has(t.name)) out.push([t, undefined])
  return out
}

export const compare = (baseline: ExperimentSummary, current: ExperimentSummary): Comparison => {
  const lists: Record<Category, Array<Change>> = {
    newly_failing: [],
    newly_passing: [],
    still_failing: [],
    flaky: [],
    added: [],
    removed: []
  }
  const timing: Array<TimingChange> = []
  let unchanged = 0
  for (const [before, after] of pairs(baseline, current)) {
    const category = categorize(before, after)
    const name = (after ?? before)?.name ?? ""
    const error_message = (after ?? before)?.error_message ?? null
    if (category !== null)
      lists[category].push({ name, before: before?.status ?? null, after: after?.status ?? null, error_message })
    const changed = before !== undefined && after !== undefined ? timingChange(before, after) : null
    if (changed !== null) timing.push(changed)
    if (category === null && changed === null) unchanged++
  }
  timing.sort((x, y) => Math.abs(y.after_ms - y.before_ms) - Math.abs(x.after_ms - x.before_ms))
  return {
    baseline: runRef(baseline),
    current: runRef(current),
    ...lists,
    timing: timing.slice(0, timingLimit),
    timing_left_out: Math.max(0, timing.length - timingLimit),
    unchanged
  }
}
