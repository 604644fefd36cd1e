/**
 * `report.html`: one self-contained page — summary cards, the interop matrix coloured by status, a timeline of
 * tests and services as inline SVG, every test with its failure details, the services. No script, no network:
 * a Content-Security-Policy forbids both, and every text from the run is escaped.
 */
import { concat } from "./internal/chunks.ts"
import { attr, href, human, insideRun, text } from "./internal/escape.ts"
import { cellAt, colour } from "./internal/labels.ts"
import { phases, phaseOf, render as timeline } from "./internal/timeline.ts"
import { type RunSummary, type ServiceResult, type Status, statuses, type TestResult } from "./RunSummary.ts"

export const fileName = "report.html"

const css = `
:root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1180px;margin:0 auto;padding:24px}
header{display:flex;align-items:center;gap:16px;flex-wrap:wrap;margin-bottom:4px}
h1{font-size:26px;margin:0;word-break:break-word}
h2{font-size:18px;margin:28px 0 10px}
.sub{color:var(--muted);margin:0 0 18px}
.run{padding:3px 12px;border-radius:999px;font-weight:600;color:#fff}
.run.completed{background:#1a7f37}.run.failed{background:#cf222e}.run.finished_early{background:#bc4c00}.run.interrupted{background:#8250df}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(128px,1fr));gap:10px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px;border-top:4px solid var(--c)}
.card b{display:block;font-size:26px;line-height:1.2}
.card span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.bar{display:flex;height:12px;border-radius:6px;overflow:hidden;margin:14px 0 4px;background:var(--line)}
.bar i{display:block;height:100%}
.panel{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px;overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;white-space:nowrap}
table.matrix td,table.matrix th{text-align:center;border:1px solid var(--line)}
table.matrix th{text-transform:none;letter-spacing:0;font-size:13px;color:var(--fg)}
table.matrix th.row{text-align:right}
table.matrix td.cell{font-weight:600;min-width:90px}
table.matrix td.empty{color:var(--muted)}
.legend{display:flex;gap:14px;flex-wrap:wrap;color:var(--muted);font-size:12px;margin-top:8px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;vertical-align:-2px}
svg.timeline{display:block;font:12px system-ui,sans-serif}
svg .band{fill:#f6f8fa}
svg .grid{stroke:#d1d9e0;stroke-dasharray:2 3}
svg .tick{fill:#59636e;font-size:11px}
svg .test{fill:#1f2328;font-weight:600}
svg .svc{fill:#59636e;font-size:11px}
details{border-bottom:1px solid var(--line);padding:8px 2px}
details:last-child{border-bottom:0}
summary{cursor:pointer;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
summary .name{font-weight:600;word-break:break-word}
summary .meta{color:var(--muted);margin-left:auto;font-size:12px}
pre{background:#fff8f8;border:1px solid #ffcecb;border-radius:6px;padding:10px;white-space:pre-wrap;word-break:break-word;margin:8px 0}
ul{margin:6px 0;padding-left:22px}
a{color:#0969da}
footer{color:var(--muted);font-size:12px;margin-top:28px}
`

const pill = (s: Status) => `<span class="pill" style="background:${colour[s].bg};color:${colour[s].fg}">${s}</span>`

const cards = (s: RunSummary): string => {
  const shown = statuses.filter((st) => s.tests[st] > 0 || st === "passed" || st === "failed")
  const card = (label: string, value: string, c: string) =>
    `<div class="card" style="--c:${c}"><b>${value}</b><span>${label}</span></div>`
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

const legend = (present: ReadonlyArray<Status>, extra = "") =>
  `<div class="legend">${present.map((st) => `<span><i style="background:${colour[st].bg}"></i>${st}</span>`).join("")}${extra}</div>`

const matrix = (s: RunSummary): string => {
  if (s.matrix === null) return ""
  const { cells, columns, rows } = s.matrix
  const at = cellAt(s.matrix)
  const td = (row: string, column: string) => {
    const c = at(row, column)
    if (c === undefined) return '<td class="empty">·</td>'
    const title = c.tests.join(", ")
    const count = c.tests.length > 1 ? ` ×${c.tests.length}` : ""
    return `<td class="cell" style="background:${colour[c.status].bg};color:${colour[c.status].fg}" title="${attr(title)}">${c.status}${count}</td>`
  }
  const head = `<tr><th></th>${columns.map((c) => `<th>${text(c)}</th>`).join("")}</tr>`
  const body = rows.map((r) => `<tr><th class="row">${text(r)}</th>${columns.map((c) => td(r, c)).join("")}</tr>`)
  const present = statuses.filter((st) => cells.some((c) => c.status === st))
  return [
    "<h2>Interop matrix</h2>",
    `<div class="panel"><table class="matrix">${head}${body.join("")}</table>${legend(present)}</div>`
  ].join("\n")
}

/** Each stage's picture as an image: an SVG in an <img> runs no script and loads nothing (the CSP allows data:). */
const topologySection = (s: RunSummary): string => {
  const pictures = s.topologies ?? []
  if (pictures.length === 0) return ""
  const figures = pictures.map(
    (t) =>
      `<figure><img alt="${attr(`topology of ${t.name}`)}" src="data:image/svg+xml;base64,${Buffer.from(t.svg, "utf8").toString("base64")}"><figcaption>${text(t.name)}</figcaption></figure>`
  )
  return ["", "<h2>Topology</h2>", `<div class="panel">${figures.join("")}</div>`].join("\n")
}

const timelineSection = (s: RunSummary): string => {
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

/** A link only to a path inside the run directory; anything else is shown as text, never followed. */
const link = (label: string, path: string) =>
  insideRun(path)
    ? `<a href="${attr(href(path))}">${text(label)}</a>`
    : `${text(label === path ? path : `${label} (${path})`)} <i>(outside the run directory, not linked)</i>`

const testDetails = (t: TestResult): string => {
  const open = t.status === "failed" || t.status === "timeout" || t.status === "interrupted"
  const parts: Array<string> = []
  if (t.description !== null) parts.push(`<p>${text(t.description)}</p>`)
  if (t.error_message !== null) parts.push(`<pre>${text(t.error_message)}</pre>`)
  if (t.participants.length > 0) {
    const ps = t.participants.map(
      (p) =>
        `${text(p.service)}: <b>${text(p.implementation)}</b>${p.version === null ? "" : ` ${text(p.version)}`} (${p.type}${p.role === null ? "" : `, ${p.role}`})`
    )
    parts.push(`<p>Participants: ${ps.join(" · ")}</p>`)
  }
  if (t.unsupported_by.length > 0)
    parts.push(`<p>Declared unsupported by ${t.unsupported_by.map(text).join(", ")}.</p>`)
  const attempts = t.attempts.map((a) => {
    const items: Array<string> = []
    if (a.error_message !== null && a.error_message !== t.error_message)
      items.push(`<pre>${text(a.error_message)}</pre>`)
    if (a.logs_path !== null) items.push(`<li>logs: ${link(a.logs_path, a.logs_path)}</li>`)
    for (const st of a.steps.filter((x) => x.status !== "passed")) {
      items.push(
        `<li>step ${st.index} (${text(st.kind)}) ${st.status}${st.message === null ? "" : `: ${text(st.message)}`}</li>`
      )
    }
    for (const as of a.assertions.filter((x) => !x.passed)) {
      items.push(
        `<li>assertion ${as.index} (${text(as.kind)}) failed${as.message === null ? "" : `: ${text(as.message)}`}</li>`
      )
    }
    return `<li>attempt ${a.attempt}: ${pill(a.status)} ${human(a.duration_ms)}${items.length === 0 ? "" : `<ul>${items.join("")}</ul>`}</li>`
  })
  if (attempts.length > 0) parts.push(`<ul>${attempts.join("")}</ul>`)
  if (t.artifacts.length > 0) {
    const many = t.attempts.length > 1
    const items = t.artifacts.map((a) => {
      const by = a.service === null ? "" : ` from ${text(a.service)}`
      const when = many && a.attempt !== null ? `, attempt ${a.attempt}` : ""
      return `<li>${text(a.kind)}${by}${when}: ${link(a.name, a.path)}</li>`
    })
    parts.push(`<p>Artifacts:</p><ul>${items.join("")}</ul>`)
  }
  const meta = `${t.attempts.length} attempt${t.attempts.length === 1 ? "" : "s"} · ${human(t.duration * 1000)}`
  return `<details${open ? " open" : ""}><summary>${pill(t.status)}<span class="name">${text(t.name)}</span><span class="meta">${meta}</span></summary>${parts.join("")}</details>`
}

/** Above this many tests, only those that did not pass get their details (all of them are in the JSON report). */
export const detailLimit = 2000

/** Above this many services, only those that ended badly are listed. */
export const serviceLimit = 2000

const notice = (message: string) => `<p class="sub">${message}</p>`

function* testsSection(s: RunSummary): Generator<string> {
  const results = s.tests.results
  yield '<h2>Tests</h2>\n<div class="panel">'
  if (results.length === 0) {
    yield "<p>No tests were declared.</p></div>"
    return
  }
  const all = results.length <= detailLimit
  let shown = 0
  let left = 0
  for (const t of results) {
    if (!all && t.status === "passed") continue
    if (shown >= detailLimit) {
      left++
      continue
    }
    yield `${shown === 0 ? "" : "\n"}${testDetails(t)}`
    shown++
  }
  if (!all) {
    const passed = s.tests.passed
    const more = left === 0 ? "" : ` and ${left} more that did not pass`
    yield notice(
      `${results.length} tests: too many to list each here (over ${detailLimit}). Shown: ${shown} that did not pass; not shown: ${passed} passed${more}. experiment_summary.json and junit.xml have every test.`
    )
  }
  yield "</div>"
}

const endedBadly = (v: ServiceResult) =>
  v.crashed || v.unsupported || v.status === "ERROR" || (v.exit_code !== null && v.exit_code !== 0) || v.signal !== null

const serviceRow = (v: ServiceResult) =>
  `<tr><td>${text(v.test)}</td><td>${text(v.service_name)}</td><td>${text(v.implementation ?? "—")}</td><td>${v.service_type ?? "—"}</td>` +
  `<td>${text(v.status)}${v.unsupported ? " (unsupported)" : ""}</td><td class="num">${v.exit_code ?? text(v.signal ?? "—")}</td><td>${v.crashed ? "yes" : "no"}</td></tr>`

function* servicesSection(s: RunSummary): Generator<string> {
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

/** The page in pieces, one test at a time: a run of any size is written without one huge string. */
export function* chunks(s: RunSummary): Generator<string> {
  const name = s.experiment_name ?? s.experiment_id
  const meta = s.report_metadata
  const sub = [
    `run ${text(s.experiment_id)}`,
    s.start_time === null ? null : `started ${text(s.start_time)}`,
    `took ${human(s.duration_seconds * 1000)}`,
    s.configuration_file === null ? null : `from ${text(s.configuration_file)}`
  ].filter((x) => x !== null)
  const reason = s.reason === null ? "" : `<p class="sub">${text(s.reason)}</p>`
  yield `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${text(name)} — testbed report</title>
<style>${css}</style>
</head>
<body>
<main>
<header><h1>${text(name)}</h1><span class="run ${s.status}">${s.status.replace("_", " ")}</span></header>
<p class="sub">${sub.join(" · ")}</p>
${reason}
${cards(s)}
${matrix(s)}${topologySection(s)}
${timelineSection(s)}
`
  yield* testsSection(s)
  yield "\n"
  yield* servicesSection(s)
  yield `
<footer>Generated by testbed at ${text(meta.generated_at)} from ${meta.event_log === null ? "the event stream" : text(meta.event_log)} · ${meta.events_total} events${meta.events_unknown > 0 ? ` · ${meta.events_unknown} of unknown types skipped` : ""}${meta.events_invalid > 0 ? ` · ${meta.events_invalid} invalid skipped` : ""}</footer>
</main>
</body>
</html>
`
}

export const render = (s: RunSummary): string => concat(chunks(s))
