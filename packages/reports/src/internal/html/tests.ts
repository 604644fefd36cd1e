// The tests of the run report, failures first: a filter bar (status, name), then each test's details — its
// message, the failed steps and assertions with links to their logs, and the tails of those logs inline.
import {
  type Attempt,
  type ExperimentSummary,
  isFailure,
  type LogTail,
  type Status,
  type TestResult
} from "../../ExperimentSummary.ts"
import { attr, human, text } from "../escape.ts"
import * as Tails from "../tails.ts"
import { link, pill } from "./page.ts"

/** Statuses in the order the page lists them: what needs a look first. */
export const listOrder: ReadonlyArray<Status> = [
  "failed",
  "timeout",
  "interrupted",
  "unschedulable",
  "flaky",
  "runner_lost",
  "unsupported",
  "skipped",
  "passed"
]

/** The tests the page details, in the order it lists them, each with its anchor. */
export interface Listing {
  readonly shown: ReadonlyArray<{ readonly test: TestResult; readonly id: string }>
  /** Tests left out by the limit (the page says so). */
  readonly left: number
  readonly all: boolean
}

/**
 * Failures first (by `listOrder`, declaration order within a status). Up to `limit` tests all are listed; above,
 * only those that did not pass, at most `limit`.
 */
export const listing = (s: ExperimentSummary, limit: number): Listing => {
  const results = s.tests.results
  const all = results.length <= limit
  const byStatus = new Map<Status, Array<{ test: TestResult; id: string }>>()
  results.forEach((test, index) => {
    if (!all && test.status === "passed") return
    const bucket = byStatus.get(test.status) ?? []
    bucket.push({ test, id: `test-${index + 1}` })
    byStatus.set(test.status, bucket)
  })
  const ordered = listOrder.flatMap((st) => byStatus.get(st) ?? [])
  return { shown: ordered.slice(0, limit), left: Math.max(0, ordered.length - limit), all }
}

const logLinks = (paths: ReadonlyArray<string>) =>
  paths.length === 0 ? "" : ` — ${paths.map((p) => link(p.slice(p.lastIndexOf("/") + 1), p)).join(" · ")}`

const tailHtml = (tail: LogTail, open: boolean) =>
  `<details class="tail"${open ? " open" : ""}><summary><b>${text(tail.name)}</b> · ${text(Tails.extent(tail))} · ${link("full file", tail.path)}</summary>` +
  `<pre class="log">${tail.text === "" ? "<i>(empty)</i>" : text(tail.text)}</pre></details>`

const tailsHtml = (a: Attempt): string => {
  const { others, primary } = Tails.split(a)
  if (primary.length === 0) return ""
  return [...primary.map((t) => tailHtml(t, true)), ...others.map((t) => tailHtml(t, false))].join("")
}

const attemptHtml = (t: TestResult, a: Attempt): string => {
  const items: Array<string> = []
  if (a.error_message !== null && a.error_message !== t.error_message) items.push(`<pre>${text(a.error_message)}</pre>`)
  if (a.logs_path !== null) items.push(`<li>logs: ${link(a.logs_path, a.logs_path)}</li>`)
  for (const st of a.steps.filter((x) => x.status !== "passed")) {
    const note = st.message === null ? "" : `: ${text(st.message)}`
    items.push(`<li>step ${st.index} (${text(st.kind)}) ${st.status}${note}${logLinks(st.logs)}</li>`)
  }
  for (const as of a.assertions.filter((x) => !x.passed)) {
    const note = as.message === null ? "" : `: ${text(as.message)}`
    items.push(`<li>assertion ${as.index} (${text(as.kind)}) failed${note}${logLinks(as.logs)}</li>`)
  }
  const list = items.length === 0 ? "" : `<ul>${items.join("")}</ul>`
  const where = a.host === undefined ? "" : ` on ${text(a.host)}`
  return `<li>attempt ${a.attempt}: ${pill(a.status)} ${human(a.duration_ms)}${where}${list}${tailsHtml(a)}</li>`
}

const participants = (t: TestResult) =>
  t.participants
    .map(
      (p) =>
        `${text(p.service)}: <b>${text(p.implementation)}</b>${p.version === null ? "" : ` ${text(p.version)}`} (${p.type}${p.role === null ? "" : `, ${p.role}`})`
    )
    .join(" · ")

const artifacts = (t: TestResult) => {
  const many = t.attempts.length > 1
  return t.artifacts.map((a) => {
    const by = a.service === null ? "" : ` from ${text(a.service)}`
    const when = many && a.attempt !== null ? `, attempt ${a.attempt}` : ""
    return `<li>${text(a.kind)}${by}${when}: ${link(a.name, a.path)}</li>`
  })
}

/** One test: open when it failed, with everything a reader needs to see why. */
export const details = (t: TestResult, id: string): string => {
  const parts: Array<string> = []
  if (t.description !== null) parts.push(`<p>${text(t.description)}</p>`)
  if (t.error_message !== null) parts.push(`<pre>${text(t.error_message)}</pre>`)
  if (t.participants.length > 0) parts.push(`<p>Participants: ${participants(t)}</p>`)
  if (t.unsupported_by.length > 0)
    parts.push(`<p>Declared unsupported by ${t.unsupported_by.map(text).join(", ")}.</p>`)
  if (t.attempts.length > 0) parts.push(`<ul>${t.attempts.map((a) => attemptHtml(t, a)).join("")}</ul>`)
  if (t.artifacts.length > 0) parts.push(`<p>Artifacts:</p><ul>${artifacts(t).join("")}</ul>`)
  // A cluster run's: the hosts that ran it, in order.
  const hosts = [...new Set(t.attempts.flatMap((a) => (a.host === undefined ? [] : [a.host])))]
  const on = hosts.length === 0 ? "" : ` · on ${hosts.map(text).join(", ")}`
  const meta = `${t.attempts.length} attempt${t.attempts.length === 1 ? "" : "s"} · ${human(t.duration * 1000)}${on}`
  const data = `data-status="${t.status}" data-name="${attr(t.name.toLowerCase())}"`
  return `<details class="test" id="${id}" ${data}${isFailure(t.status) ? " open" : ""}><summary>${pill(t.status)}<span class="name">${text(t.name)}</span><span class="meta">${meta}</span></summary>${parts.join("")}</details>`
}

/** The filter bar: hidden until the script shows it (without the script every test is listed). */
export const filters = (shown: Listing["shown"]): string => {
  const counts = new Map<Status, number>()
  for (const { test } of shown) counts.set(test.status, (counts.get(test.status) ?? 0) + 1)
  const boxes = listOrder
    .filter((st) => counts.has(st))
    .map((st) => `<label><input type="checkbox" value="${st}" checked> ${pill(st)} ${counts.get(st)}</label>`)
  return [
    '<div class="filters" id="filters" hidden>',
    '<input type="search" id="filter-name" placeholder="Search tests by name" aria-label="Search tests by name">',
    ...boxes,
    '<button type="button" id="filter-failures">Failures only</button>',
    '<button type="button" id="filter-all">All</button>',
    '<span id="filter-count"></span>',
    "</div>"
  ].join("\n")
}
