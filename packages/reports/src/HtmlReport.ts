/**
 * `report.html`: one self-contained page — summary cards, the matrices (one grid each, cells linked to their
 * tests), every test with failures first (filter by status, search by name), each failure with the tails of the
 * logs that explain it inline and links to the full files, a timeline of tests and services as inline SVG, and the
 * services. No network; one inline script (the filters), allowed by its hash; every text from the run escaped.
 */
import { concat } from "./internal/chunks.ts"
import { attr, human, text } from "./internal/escape.ts"
import * as Matrices from "./internal/html/matrices.ts"
import * as Resources from "./internal/html/resources.ts"
import { card, foot, head, legend } from "./internal/html/page.ts"
import { filterScript, filterScriptSource } from "./internal/html/script.ts"
import * as Tests from "./internal/html/tests.ts"
import { colour } from "./internal/labels.ts"
import { phases, phaseOf, render as timeline } from "./internal/timeline.ts"
import { type ExperimentSummary, type ServiceResult, statuses } from "./ExperimentSummary.ts"

export const fileName = "report.html"

/** Above this many tests, only those that did not pass get their details (all of them are in the JSON report). */
export const detailLimit = 2000

/** Above this many services, only those that ended badly are listed. */
export const serviceLimit = 2000

const cards = (s: ExperimentSummary): string => {
  const shown = statuses.filter((st) => s.tests[st] > 0 || st === "passed" || st === "failed")
  const bar = statuses
    .filter((st) => s.tests[st] > 0)
    .map(
      (st) =>
        `<i style="width:${((s.tests[st] / s.tests.total) * 100).toFixed(2)}%;background:${colour[st].bg}" title="${st}: ${s.tests[st]}"></i>`
    )
    .join("")
  return [
    '<section class="cards">',
    card("tests", String(s.tests.total), "#59636e"),
    ...shown.map((st) => card(st, String(s.tests[st]), colour[st].bg)),
    card("success rate", `${s.tests.success_rate.toFixed(1)}%`, "#0969da"),
    card("duration", human(s.duration_seconds * 1000), "#59636e"),
    "</section>",
    s.tests.total === 0 ? "" : `<div class="bar">${bar}</div>`
  ].join("\n")
}

/** Each stage's picture as an image: an SVG in an <img> runs no script and loads nothing (the CSP allows data:). */
const topologySection = (s: ExperimentSummary): string => {
  const pictures = s.topologies ?? []
  if (pictures.length === 0) return ""
  const figures = pictures.map(
    (t) =>
      `<figure><img alt="${attr(`topology of ${t.name}`)}" src="data:image/svg+xml;base64,${Buffer.from(t.svg, "utf8").toString("base64")}"><figcaption>${text(t.name)}</figcaption></figure>`
  )
  return ["<h2>Topology</h2>", `<div class="panel">${figures.join("")}</div>`].join("\n")
}

const timelineSection = (s: ExperimentSummary): string => {
  const svg = timeline(s)
  if (svg === null) return ""
  const present = statuses.filter((st) => s.tests.results.some((t) => t.attempts.some((a) => a.status === st)))
  const phaseLegend = phases
    .map((p) => {
      const fill = phaseOf(
        p === "running" ? "RUNNING" : p === "error" ? "ERROR" : p === "stopping" ? "STOPPED" : "STARTING"
      ).fill
      return `<span><i style="background:${fill}"></i>service ${p}</span>`
    })
    .join("")
  return ["<h2>Timeline</h2>", `<div class="panel">${svg}${legend(present, phaseLegend)}</div>`].join("\n")
}

const notice = (message: string) => `<p class="sub">${message}</p>`

function* testsSection(s: ExperimentSummary, list: Tests.Listing): Generator<string> {
  yield '<h2>Tests</h2>\n<div class="panel">'
  if (s.tests.results.length === 0) {
    yield "<p>No tests were declared.</p></div>"
    return
  }
  yield Tests.filters(list.shown)
  for (const { id, test } of list.shown) yield `\n${Tests.details(test, id)}`
  if (!list.all) {
    const more = list.left === 0 ? "" : ` and ${list.left} more that did not pass`
    yield notice(
      `${s.tests.results.length} tests: too many to list each here (over ${detailLimit}). Shown: ${list.shown.length} that did not pass; not shown: ${s.tests.passed} passed${more}. experiment_summary.json and junit.xml have every test.`
    )
  }
  yield "</div>"
}

const endedBadly = (v: ServiceResult) =>
  v.crashed || v.unsupported || v.status === "ERROR" || (v.exit_code !== null && v.exit_code !== 0) || v.signal !== null

const serviceRow = (v: ServiceResult) =>
  `<tr><td>${text(v.test)}</td><td>${text(v.service_name)}</td><td>${text(v.implementation ?? "—")}</td><td>${v.service_type ?? "—"}</td>` +
  `<td>${text(v.status)}${v.unsupported ? " (unsupported)" : ""}</td><td class="num">${v.exit_code ?? text(v.signal ?? "—")}</td><td>${v.crashed ? "yes" : "no"}</td></tr>`

function* servicesSection(s: ExperimentSummary): Generator<string> {
  if (s.services.length === 0) return
  yield '<h2>Services</h2>\n<div class="panel"><table><tr><th>Test</th><th>Service</th><th>Implementation</th><th>Type</th><th>Final state</th><th>Exit</th><th>Crashed</th></tr>'
  const all = s.services.length <= serviceLimit
  let shown = 0
  let bad = 0
  for (const v of s.services) {
    if (!all && !endedBadly(v)) continue
    bad++
    if (shown >= serviceLimit) continue
    yield `\n${serviceRow(v)}`
    shown++
  }
  yield "\n</table>"
  if (!all) {
    yield notice(
      `${s.services.length} services: too many to list each here (over ${serviceLimit}). Shown: ${shown} of the ${bad} that crashed, failed or ended with a code or signal. experiment_summary.json has every service.`
    )
  }
  yield "</div>"
}

const footer = (s: ExperimentSummary): string => {
  const meta = s.report_metadata
  const unknown = meta.events_unknown > 0 ? ` · ${meta.events_unknown} of unknown types skipped` : ""
  const invalid = meta.events_invalid > 0 ? ` · ${meta.events_invalid} invalid skipped` : ""
  const from = meta.event_log === null ? "the event stream" : text(meta.event_log)
  return `<footer>Generated by testbed at ${text(meta.generated_at)} from ${from} · ${meta.events_total} events${unknown}${invalid}</footer>`
}

const top = (s: ExperimentSummary): string => {
  const name = s.experiment_name ?? s.experiment_id
  const sub = [
    `run ${text(s.experiment_id)}`,
    s.start_time === null ? null : `started ${text(s.start_time)}`,
    `took ${human(s.duration_seconds * 1000)}`,
    s.configuration_file === null ? null : `from ${text(s.configuration_file)}`,
    s.trace_id === undefined ? null : `trace <code>${text(s.trace_id)}</code>`
  ].filter((x) => x !== null)
  const reason = s.reason === null ? "" : `<p class="sub">${text(s.reason)}</p>`
  return `<header><h1>${text(name)}</h1><span class="run ${s.status}">${s.status.replace("_", " ")}</span></header>
<p class="sub">${sub.join(" · ")}</p>
${reason}
${cards(s)}
`
}

/** The page in pieces, one test at a time: a run of any size is written without one huge string. */
export function* chunks(s: ExperimentSummary): Generator<string> {
  const list = Tests.listing(s, detailLimit)
  const anchors = new Map(list.shown.map(({ id, test }) => [test.name, id]))
  yield head(`${s.experiment_name ?? s.experiment_id} — testbed report`, { source: filterScriptSource })
  yield top(s)
  yield `${Matrices.section(s, (test) => anchors.get(test))}\n`
  const topology = topologySection(s)
  if (topology !== "") yield `${topology}\n`
  yield* testsSection(s, list)
  yield `\n${timelineSection(s)}\n`
  yield* servicesSection(s)
  const resources = Resources.section(s)
  if (resources !== "") yield `\n${resources}\n`
  yield `\n${footer(s)}\n`
  yield foot({ code: filterScript })
}

export const render = (s: ExperimentSummary): string => concat(chunks(s))
