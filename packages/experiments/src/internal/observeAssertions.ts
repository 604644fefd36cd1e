// Assertions on what a service used or what a tool wrapped around it found: `resource_below` reads the service's
// sampled peaks (one more sample first, when it still runs), `memcheck_clean` reads valgrind's error summary.
import { ByteSize, TimeSpan } from "@testbed/events"
import { Duration, Effect, FileSystem } from "effect"
import type { PlannedAssertion } from "../Plan.ts"
import type { Attempt } from "./attempt.ts"
import * as Execution from "./execution.ts"
import type { Peaks } from "./resources.ts"

interface Verdict {
  readonly passed: boolean
  readonly message: string
}

type ResourceBelow = Extract<PlannedAssertion, { readonly type: "resource_below" }>
type MemcheckClean = Extract<PlannedAssertion, { readonly type: "memcheck_clean" }>

/** Each limit given, with the figure it is compared to and how both are written. */
const limitsOf = (assertion: ResourceBelow) =>
  [
    assertion.peak_rss === undefined
      ? undefined
      : { what: "peak RSS", limit: assertion.peak_rss, figure: (s: Figures) => s.peakRssBytes, show: ByteSize.format },
    assertion.cpu_time === undefined
      ? undefined
      : {
          what: "CPU time",
          limit: Duration.toMillis(assertion.cpu_time),
          figure: (s: Figures) => s.cpuMs,
          show: (ms: number) => TimeSpan.format(Duration.millis(Math.round(ms)))
        },
    assertion.threads === undefined
      ? undefined
      : { what: "threads", limit: assertion.threads, figure: (s: Figures) => s.peakThreads, show: String },
    assertion.open_files === undefined
      ? undefined
      : { what: "open files", limit: assertion.open_files, figure: (s: Figures) => s.peakOpenFiles, show: String }
  ].filter((limit) => limit !== undefined)

type Figures = Peaks

export const resourceBelow = Effect.fnUntraced(function* (attempt: Attempt, assertion: ResourceBelow) {
  const runtime = attempt.services.get(assertion.service)
  const subject = `service ${assertion.service}`
  if (runtime?.usage === undefined) {
    return { passed: false, message: `${subject}: no resource samples (not a local process?)` } satisfies Verdict
  }
  if (runtime.exit === undefined) yield* runtime.usage.sampleNow
  const figures = runtime.usage.peaks
  if (figures === undefined) return { passed: false, message: `${subject}: no resource sample was taken` }
  const verdicts = limitsOf(assertion).map((limit) => {
    const figure = limit.figure(figures)
    const below = figure < limit.limit
    return {
      below,
      text: `${limit.what} ${limit.show(figure)} ${below ? "is below" : "is not below"} ${limit.show(limit.limit)}`
    }
  })
  const failed = verdicts.filter((verdict) => !verdict.below)
  return {
    passed: failed.length === 0,
    message: `${subject}: ${(failed.length > 0 ? failed : verdicts).map((verdict) => verdict.text).join(", ")}`
  } satisfies Verdict
})

export const memcheckClean = Effect.fnUntraced(function* (attempt: Attempt, assertion: MemcheckClean) {
  const fs = yield* FileSystem.FileSystem
  const runtime = attempt.services.get(assertion.service)
  const subject = `service ${assertion.service}`
  if (runtime === undefined) return { passed: false, message: `${subject} did not run` } satisfies Verdict
  const log = yield* fs.readFileString(Execution.valgrindLog(runtime.dir)).pipe(Effect.orElseSucceed(() => undefined))
  const errors = log === undefined ? undefined : Execution.memcheckErrors(log)
  if (errors === undefined) {
    return { passed: false, message: `${subject}: valgrind wrote no error summary (did it run to the end?)` }
  }
  const allowed = assertion.max_errors ?? 0
  return {
    passed: errors <= allowed,
    message: `${subject}: valgrind memcheck found ${errors} error(s) (at most ${allowed} allowed)`
  } satisfies Verdict
})
