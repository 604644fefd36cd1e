/**
 * Shards of one experiment (runs of parts of its tests, on several machines or CI jobs) merged into one summary,
 * from which every report is rendered as for a single run. Tests are matched by name: a test that ran in one shard
 * is taken from it; one that ran in several keeps all its attempts, in the order they started (passed in the end
 * after an earlier failure: flaky). Every path is rebased onto the merged directory, so links keep pointing at the
 * shards' files when the shards are inside it (and are shown as text, not links, when they are not).
 */
import { Effect, Runtime, Schema } from "effect"
import * as ES from "./ExperimentSummary.ts"
import { countTests } from "./internal/finish.ts"
import { matricesOf } from "./internal/matrices.ts"

/** The runs given are not shards of one experiment. */
export class ShardsDisagree extends Schema.TaggedError<ShardsDisagree>()("ShardsDisagree", {
  experiments: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `the runs are of different experiments (${this.experiments.join(", ")}): only shards of one experiment merge`
  }
  override get [Runtime.errorExitCode](): number {
    return 2
  }
}

export interface Shard {
  readonly summary: ES.ExperimentSummary
  /** Where the shard's directory is, relative to the merged directory (`shard-1`, `../elsewhere/run`; `` for itself). */
  readonly prefix: string
}

const rebase = (prefix: string) => (path: string) =>
  prefix === "" || path.startsWith("/") ? path : `${prefix.replace(/\/+$/, "")}/${path}`

const rebaseAttempt =
  (to: (p: string) => string) =>
  (a: ES.Attempt): ES.Attempt => ({
    ...a,
    logs_path: a.logs_path === null ? null : to(a.logs_path),
    steps: a.steps.map((s) => ({ ...s, logs: s.logs.map(to) })),
    assertions: a.assertions.map((x) => ({ ...x, logs: x.logs.map(to) })),
    log_tails: a.log_tails.map((t) => ({ ...t, path: to(t.path) }))
  })

const rebaseTest =
  (prefix: string) =>
  (t: ES.TestResult): ES.TestResult => {
    const to = rebase(prefix)
    return {
      ...t,
      logs_path: t.logs_path === null ? null : to(t.logs_path),
      attempts: t.attempts.map(rebaseAttempt(to)),
      artifacts: t.artifacts.map((a) => ({ ...a, path: to(a.path) }))
    }
  }

const time = (iso: string | null) => (iso === null ? Number.NaN : Date.parse(iso))

/** One test that ran in two shards: its attempts in the order they started, numbered again from 1. */
const combine = (a: ES.TestResult, b: ES.TestResult): ES.TestResult => {
  const tagged = [...a.attempts.map((x) => ({ x, from: a })), ...b.attempts.map((x) => ({ x, from: b }))]
  tagged.sort((p, q) => (time(p.x.start_time) || 0) - (time(q.x.start_time) || 0))
  const renumber = new Map(tagged.map((t, i) => [`${t.from === a ? "a" : "b"}:${t.x.attempt}`, i + 1]))
  const attempts = tagged.map((t, i) => ({ ...t.x, attempt: i + 1 }))
  const final = attempts[attempts.length - 1]!
  const failedBefore = attempts.slice(0, -1).some((x) => x.status === "failed" || x.status === "timeout")
  const status: ES.Status = final.status === "passed" && failedBefore ? "flaky" : final.status
  const artifacts = [a, b].flatMap((from) =>
    from.artifacts.map((x) => ({
      ...x,
      attempt: x.attempt === null ? null : (renumber.get(`${from === a ? "a" : "b"}:${x.attempt}`) ?? null)
    }))
  )
  return {
    ...a,
    status,
    duration: Math.round(attempts.reduce((sum, x) => sum + x.duration_ms, 0)) / 1000,
    start_time: attempts[0]?.start_time ?? null,
    end_time: final.end_time,
    error_message: final.status === "passed" ? null : final.error_message,
    logs_path: final.logs_path ?? a.logs_path,
    fast_fail_triggered: a.fast_fail_triggered || b.fast_fail_triggered,
    retries: attempts.length - 1,
    flaky: status === "flaky",
    last_state: (tagged[tagged.length - 1]?.from ?? b).last_state,
    attempts,
    artifacts,
    services: [...new Set([...a.services, ...b.services])]
  }
}

/** Tests of every shard by name, in first-declared order. */
const mergeTests = (shards: ReadonlyArray<Shard>): Array<ES.TestResult> => {
  const byName = new Map<string, ES.TestResult>()
  for (const shard of shards) {
    for (const t of shard.summary.tests.results.map(rebaseTest(shard.prefix))) {
      const seen = byName.get(t.name)
      // A test declared in several shards but run in one (the others skipped it) is taken from where it ran.
      if (seen === undefined || seen.attempts.length === 0) byName.set(t.name, t)
      else if (t.attempts.length > 0) byName.set(t.name, combine(seen, t))
    }
  }
  return [...byName.values()]
}

const runOrder: ReadonlyArray<ES.RunStatus> = ["completed", "finished_early", "failed", "interrupted"]

const earliest = (values: ReadonlyArray<string | null>, pick: (a: number, b: number) => boolean) =>
  values.reduce<string | null>(
    (best, v) => (v === null ? best : best === null || pick(time(v), time(best)) ? v : best),
    null
  )

const metadata = (shards: ReadonlyArray<Shard>, generatedAt: string): ES.ReportMetadata => {
  const all = shards.map((s) => s.summary.report_metadata)
  const sum = (f: (m: ES.ReportMetadata) => number) => all.reduce((n, m) => n + f(m), 0)
  return {
    generator: "testbed",
    format_version: ES.formatVersion,
    generated_at: generatedAt,
    event_log: shards.map((s) => rebase(s.prefix)(s.summary.report_metadata.event_log ?? "events.jsonl")).join(", "),
    events_total: sum((m) => m.events_total),
    events_unknown: sum((m) => m.events_unknown),
    unknown_event_types: [...new Set(all.flatMap((m) => m.unknown_event_types))].sort(),
    events_invalid: sum((m) => m.events_invalid)
  }
}

const fastFail = (summaries: ReadonlyArray<ES.ExperimentSummary>): ES.FastFail => {
  const triggered = summaries.find((s) => s.fast_fail.triggered)?.fast_fail
  return {
    enabled: summaries.find((s) => s.fast_fail.enabled !== null)?.fast_fail.enabled ?? null,
    triggered: triggered !== undefined,
    triggered_by: triggered?.triggered_by ?? null,
    reason: triggered?.reason ?? null
  }
}

/** The experiment all shards ran; fails with the names when they disagree. */
export const experimentOf = (shards: ReadonlyArray<Shard>): Effect.Effect<string, ShardsDisagree> => {
  const names = [...new Set(shards.map((s) => s.summary.experiment_name ?? s.summary.experiment_id))]
  return names.length === 1 ? Effect.succeed(names[0]!) : Effect.fail(new ShardsDisagree({ experiments: names }))
}

/** The summary of all shards together; fails when they are not shards of one experiment. */
export const merge = Effect.fn("Merge.merge")(function* (
  shards: ReadonlyArray<Shard>,
  meta: { readonly generatedAt: string }
) {
  const experiment = yield* experimentOf(shards)
  const summaries = shards.map((s) => s.summary)
  const results = mergeTests(shards)
  const start = earliest(
    summaries.map((s) => s.start_time),
    (a, b) => a < b
  )
  const end = earliest(
    summaries.map((s) => s.end_time),
    (a, b) => a > b
  )
  const reasons = [...new Set(summaries.flatMap((s) => (s.reason === null ? [] : [s.reason])))]
  return {
    experiment_id: [...new Set(summaries.map((s) => s.experiment_id))].join("+"),
    status: runOrder[Math.max(...summaries.map((s) => runOrder.indexOf(s.status)))] ?? "interrupted",
    start_time: start,
    end_time: end,
    duration_seconds: Math.max(0, Math.round(time(end) - time(start)) || 0) / 1000,
    configuration_file: summaries.find((s) => s.configuration_file !== null)?.configuration_file ?? null,
    tests: countTests(results),
    fast_fail: fastFail(summaries),
    services: shards.flatMap((s) => s.summary.services),
    report_metadata: metadata(shards, meta.generatedAt),
    experiment_name: experiment,
    reason: reasons.length === 0 ? null : reasons.join("; "),
    output_dir: null,
    settings: summaries[0]?.settings ?? {},
    matrices: matricesOf(results),
    state_history: summaries.flatMap((s) => s.state_history)
  } satisfies ES.ExperimentSummary as ES.ExperimentSummary
})
