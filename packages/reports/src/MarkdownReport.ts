/**
 * `EXPERIMENT_REPORT.md`: what a person reads first — run facts, counts, the matrices when the run has them, every
 * test, then each failure with its message, the tails of the logs that explain it (a failed step's output, the
 * output an assertion read) and links to its logs and artifacts.
 */
import { concat, joinLines } from "./internal/chunks.ts"
import { human, href, insideRun, md, mdFence } from "./internal/escape.ts"
import { axisCorner, cellAt, mark, matrixTitle, runMark } from "./internal/labels.ts"
import * as Tails from "./internal/tails.ts"
import {
  type Attempt,
  type ExperimentSummary,
  type LogTail,
  type Matrix,
  type Status,
  statuses,
  type TestResult
} from "./ExperimentSummary.ts"

export const fileName = "EXPERIMENT_REPORT.md"

const status = (s: Status) => `${mark[s]} ${s}`

/** A link only to a path inside the run directory; anything else is shown as text, never linked. */
const link = (label: string, path: string) =>
  insideRun(path)
    ? `[${md(label)}](${href(path)})`
    : `${md(label === path ? path : `${label} (${path})`)} (outside the run directory, not linked)`

const facts = (s: ExperimentSummary): Array<string> => {
  const rows: Array<[string, string]> = [
    ["Experiment", md(s.experiment_name ?? s.experiment_id)],
    ["Run id", md(s.experiment_id)],
    ["Status", `${runMark[s.status]} ${s.status}${s.reason === null ? "" : ` — ${md(s.reason)}`}`],
    ["Started", md(s.start_time ?? "—")],
    ["Finished", md(s.end_time ?? "—")],
    ["Duration", human(s.duration_seconds * 1000)],
    ["Success rate", `${s.tests.success_rate.toFixed(2)} %`]
  ]
  if (s.configuration_file !== null) rows.push(["Configuration", md(s.configuration_file)])
  if (s.fast_fail.triggered) {
    rows.push([
      "Fast fail",
      `triggered${s.fast_fail.triggered_by === null ? "" : ` by ${md(s.fast_fail.triggered_by)}`}`
    ])
  }
  return ["| | |", "| --- | --- |", ...rows.map(([k, v]) => `| ${k} | ${v} |`)]
}

const counts = (s: ExperimentSummary): Array<string> => [
  "| Status | Tests |",
  "| --- | ---: |",
  ...statuses.filter((st) => s.tests[st] > 0).map((st) => `| ${status(st)} | ${s.tests[st]} |`),
  `| **total** | **${s.tests.total}** |`
]

const matrix = (m: Matrix, many: boolean): Array<string> => {
  const { columns, rows } = m
  const at = cellAt(m)
  const cell = (row: string, column: string) => {
    const found = at(row, column)
    if (found === undefined) return "·"
    return found.tests.length === 1 ? status(found.status) : `${status(found.status)} (${found.tests.length} tests)`
  }
  return [
    many || m.name !== null ? `### ${md(matrixTitle(m))}` : "",
    "",
    `| ${axisCorner(m)} | ${columns.map(md).join(" | ")} |`,
    `| --- |${columns.map(() => " --- |").join("")}`,
    ...rows.map((row) => `| **${md(row)}** | ${columns.map((col) => cell(row, col)).join(" | ")} |`),
    ""
  ]
}

const matrices = (s: ExperimentSummary): Array<string> =>
  s.matrices.length === 0
    ? []
    : [
        s.matrices.length === 1 ? "## Interop matrix" : "## Interop matrices",
        "",
        ...s.matrices.flatMap((m) => matrix(m, s.matrices.length > 1))
      ]

/** The hosts a cluster run's attempts ran on, in order (none for a local run). */
const hostsOf = (t: TestResult): ReadonlyArray<string> => [
  ...new Set(t.attempts.flatMap((a) => (a.host === undefined ? [] : [a.host])))
]

/** The tests table's header and alignment rows (`hosts`: with `testRow`'s Hosts column). */
const testHeader = (hosts: boolean): Array<string> => {
  const columns: ReadonlyArray<readonly [string, string]> = [
    ["Test", "---"],
    ["Status", "---"],
    ["Attempts", "---:"],
    ["Duration", "---:"],
    ...(hosts ? [["Hosts", "---"] as const] : []),
    ["Logs", "---"]
  ]
  return [`| ${columns.map(([name]) => name).join(" | ")} |`, `| ${columns.map(([, align]) => align).join(" | ")} |`]
}

/** `hosts`: a cluster run's table has a Hosts column (which host ran each test); a local run's has none. */
const testRow = (hosts: boolean) => (t: TestResult) => {
  const logs = t.logs_path === null ? "" : link("logs", t.logs_path)
  const where = hosts ? ` ${hostsOf(t).map(md).join(", ")} |` : ""
  return `| ${md(t.name)} | ${status(t.status)} | ${t.attempts.length} | ${human(t.duration * 1000)} |${where} ${logs} |`
}

const isProblem = (t: TestResult) =>
  t.status === "failed" ||
  t.status === "timeout" ||
  t.status === "interrupted" ||
  t.status === "unschedulable" ||
  t.status === "flaky"

const logLinks = (paths: ReadonlyArray<string>) =>
  paths.length === 0 ? "" : ` — ${paths.map((p) => link(p.slice(p.lastIndexOf("/") + 1), p)).join(" · ")}`

const attemptLines = (a: Attempt): Array<string> => {
  const where = a.host === undefined ? "" : ` on ${md(a.host)}`
  const out = [`- attempt ${a.attempt}: ${status(a.status)} after ${human(a.duration_ms)}${where}`]
  if (a.logs_path !== null) out.push(`  - logs: ${link(a.logs_path, a.logs_path)}`)
  for (const step of a.steps.filter((x) => x.status !== "passed")) {
    const note = step.message === null ? "" : `: ${md(step.message)}`
    out.push(`  - step ${step.index} (${md(step.kind)}) ${step.status}${note}${logLinks(step.logs)}`)
  }
  for (const as of a.assertions.filter((x) => !x.passed)) {
    const note = as.message === null ? "" : `: ${md(as.message)}`
    out.push(`  - assertion ${as.index} (${md(as.kind)}) failed${note}${logLinks(as.logs)}`)
  }
  return out
}

const tailBlock = (tail: LogTail): Array<string> => [
  `${md(tail.name)} (${Tails.extent(tail)}, ${link(tail.path, tail.path)}):`,
  "",
  mdFence(tail.text),
  ""
]

/** The tails that explain each failed attempt's failure, after its message. */
const evidence = (t: TestResult): Array<string> =>
  t.attempts.flatMap((a) => {
    const { primary } = Tails.split(a)
    if (primary.length === 0) return []
    const heading = t.attempts.length > 1 ? `Log tails, attempt ${a.attempt}:` : "Log tails:"
    return [heading, "", ...primary.flatMap(tailBlock)]
  })

const ranOn = (t: TestResult): string => {
  const hosts = hostsOf(t)
  return hosts.length === 0 ? "" : `, ran on ${hosts.map(md).join(", ")}`
}

const details = (t: TestResult): Array<string> => {
  const out = [`### ${mark[t.status]} ${md(t.name)} — ${t.status}`, ""]
  if (t.description !== null) out.push(md(t.description), "")
  out.push(
    `${t.attempts.length} attempt${t.attempts.length === 1 ? "" : "s"}, ${human(t.duration * 1000)}` +
      (t.last_state === null ? "" : `, last state ${md(t.last_state)}`) +
      ranOn(t),
    ""
  )
  for (const a of t.attempts) if (a.status !== "passed" || t.status === "flaky") out.push(...attemptLines(a))
  out.push("")
  const message = t.error_message ?? t.attempts.findLast((a) => a.error_message !== null)?.error_message ?? null
  if (message !== null) out.push(mdFence(message), "")
  out.push(...evidence(t))
  if (t.artifacts.length > 0) {
    out.push("Artifacts:", "")
    for (const a of t.artifacts) {
      const by = a.service === null ? "" : ` from ${md(a.service)}`
      const when = t.attempts.length > 1 && a.attempt !== null ? ` (attempt ${a.attempt})` : ""
      out.push(`- ${md(a.kind)}${by}${when}: ${link(a.name, a.path)}`)
    }
    out.push("")
  }
  return out
}

const services = (s: ExperimentSummary): Array<string> => {
  if (s.services.length === 0) return []
  return [
    "## Services",
    "",
    "| Test | Service | Implementation | Type | Final state | Exit code | Crashed |",
    "| --- | --- | --- | --- | --- | ---: | --- |",
    ...s.services.map(
      (v) =>
        `| ${md(v.test)} | ${md(v.service_name)} | ${md(v.implementation ?? "—")} | ${v.service_type ?? "—"} | ` +
        `${md(v.status)}${v.unsupported ? " (unsupported)" : ""} | ${v.exit_code ?? (v.signal === null ? "—" : md(v.signal))} | ` +
        `${v.crashed ? "yes" : "no"} |`
    ),
    ""
  ]
}

/** The report's lines; a run of 100,000 tests is a long list of short lines, never one huge string. */
const lines = (s: ExperimentSummary): Array<string> => {
  const problems = s.tests.results.filter(isProblem)
  const clustered = s.tests.results.some((t) => hostsOf(t).length > 0)
  const meta = s.report_metadata
  const skippedEvents =
    meta.events_unknown + meta.events_invalid === 0
      ? ""
      : `; skipped ${meta.events_unknown} of unknown types${meta.unknown_event_types.length === 0 ? "" : ` (${meta.unknown_event_types.map(md).join(", ")})`} and ${meta.events_invalid} invalid`
  return [
    `# Experiment report: ${md(s.experiment_name ?? s.experiment_id)}`,
    "",
    ...facts(s),
    "",
    "## Summary",
    "",
    ...counts(s),
    "",
    ...matrices(s),
    "## Tests",
    "",
    ...(s.tests.results.length === 0
      ? ["No tests were declared."]
      : [...testHeader(clustered), ...s.tests.results.map(testRow(clustered))]),
    "",
    ...(problems.length === 0 ? [] : ["## Failures and retries", "", ...problems.flatMap(details)]),
    ...services(s),
    "---",
    "",
    `Generated by testbed at ${md(meta.generated_at)} from ${meta.event_log === null ? "the event stream" : md(meta.event_log)} ` +
      `(${meta.events_total} events${skippedEvents}).`,
    ""
  ]
}

/** The document in pieces, one line each. */
export const chunks = (s: ExperimentSummary): Iterable<string> => joinLines(lines(s))

export const render = (s: ExperimentSummary): string => concat(chunks(s))
