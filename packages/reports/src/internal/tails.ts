// How every report shows the evidence of a failed attempt: which log tails explain it (the files of its failed step
// and failed output assertions; all of its tails when it has none of those) and how a tail is introduced.
import type { Attempt, LogTail, TestResult } from "../ExperimentSummary.ts"
import { isFailure } from "../ExperimentSummary.ts"

/** A size people read: 812 B, 3.9 KiB, 1.2 MiB. */
export const size = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 * 1024
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / (1024 * 1024)).toFixed(1)} MiB`

const lineCount = (text: string): number => {
  let lines = 1
  for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) lines++
  return lines
}

/** "whole file, 120 B" or "last 40 lines, 3.9 KiB of 1.2 MiB". */
export const extent = (tail: LogTail): string => {
  if (tail.bytes === 0) return "empty"
  if (tail.omitted_bytes === 0) return `whole file, ${size(tail.bytes)}`
  const lines = lineCount(tail.text)
  return `last ${lines} line${lines === 1 ? "" : "s"}, ${size(tail.bytes - tail.omitted_bytes)} of ${size(tail.bytes)}`
}

/** The paths a failed attempt's failed steps and output assertions point at. */
const linkedPaths = (a: Attempt): ReadonlySet<string> => {
  const paths = new Set<string>()
  for (const step of a.steps) if (step.status !== "passed") for (const p of step.logs) paths.add(p)
  for (const assertion of a.assertions) if (!assertion.passed) for (const p of assertion.logs) paths.add(p)
  return paths
}

const none = { primary: [], others: [] } as const

/** The tails that explain the failure first; the rest after. */
export const split = (
  a: Attempt
): { readonly primary: ReadonlyArray<LogTail>; readonly others: ReadonlyArray<LogTail> } => {
  // Most attempts have none (they passed, or the run had more failures than get evidence): keep those cheap.
  if (a.log_tails.length === 0) return none
  const linked = linkedPaths(a)
  const primary = a.log_tails.filter((t) => linked.has(t.path))
  if (primary.length === 0) return { primary: a.log_tails, others: [] }
  return { primary, others: a.log_tails.filter((t) => !linked.has(t.path)) }
}

/** The tails of one stream (JUnit's system-out and system-err, CTRF's stdout and stderr). */
export const ofStream = (a: Attempt, streams: ReadonlyArray<LogTail["stream"]>): ReadonlyArray<LogTail> =>
  a.log_tails.length === 0 ? a.log_tails : a.log_tails.filter((t) => streams.includes(t.stream))

/** Plain text of some tails, each under a header naming its file: for JUnit bodies, CTRF traces. */
export const plain = (tails: ReadonlyArray<LogTail>): string =>
  tails.map((t) => `--- ${t.name}: ${t.path} (${extent(t)}) ---\n${t.text === "" ? "" : `${t.text}\n`}`).join("")

/** The attempt whose failure the test's verdict reports: the last one that failed. */
export const failedAttempt = (t: TestResult): Attempt | undefined => t.attempts.findLast((a) => isFailure(a.status))
