/**
 * A `History` as a page: `history.html` — the success rate of every run over time as an SVG chart, then every test
 * and every matrix cell with its pass rate and a strip of its statuses, run by run (lowest pass rate first) — and
 * `history.json`, the same data for scripts. Self-contained: no script, no network.
 */
import { Schema } from "effect"
import type { Status } from "./ExperimentSummary.ts"
import { History, type HistoryRun } from "./History.ts"
import { attr, text } from "./internal/escape.ts"
import { pieces } from "./internal/json.ts"
import { card, foot, head } from "./internal/html/page.ts"
import { colour } from "./internal/labels.ts"

export const htmlFileName = "history.html"
export const jsonFileName = "history.json"

/** Rows of each table shown; the JSON has them all. */
export const rowLimit = 2000

const chartWidth = 1100
const chartHeight = 260
const margin = { left: 48, right: 16, top: 16, bottom: 36 }

const when = (r: HistoryRun) => (r.start_time === null ? Number.NaN : Date.parse(r.start_time))

/** Where each run sits on the time axis: by its start time when every run has one, else evenly. */
const xs = (runs: ReadonlyArray<HistoryRun>): ReadonlyArray<number> => {
  const times = runs.map(when)
  const plot = chartWidth - margin.left - margin.right
  const t0 = Math.min(...times)
  const span = Math.max(...times) - t0
  const even = (i: number) => margin.left + (runs.length === 1 ? plot / 2 : (i / (runs.length - 1)) * plot)
  if (times.some(Number.isNaN) || span <= 0) return runs.map((_, i) => even(i))
  return times.map((t) => margin.left + ((t - t0) / span) * plot)
}

const y = (rate: number) => margin.top + (1 - rate / 100) * (chartHeight - margin.top - margin.bottom)

const num = (n: number) => (Math.round(n * 10) / 10).toString()

const day = (r: HistoryRun) => (r.start_time ?? r.directory).slice(0, 16).replace("T", " ")

/** The success rate of each run over time: a line, a point per run (titled with its counts), dated ends. */
const chart = (runs: ReadonlyArray<HistoryRun>): string => {
  const at = xs(runs)
  const grid = [0, 25, 50, 75, 100].map(
    (p) =>
      `<line class="grid" x1="${margin.left}" x2="${chartWidth - margin.right}" y1="${num(y(p))}" y2="${num(y(p))}"/><text class="tick" x="${margin.left - 6}" y="${num(y(p) + 4)}" text-anchor="end">${p}%</text>`
  )
  const line = runs.map((r, i) => `${i === 0 ? "M" : "L"}${num(at[i]!)},${num(y(r.success_rate))}`).join(" ")
  const points = runs.map(
    (r, i) =>
      `<circle class="run" cx="${num(at[i]!)}" cy="${num(y(r.success_rate))}" r="4" fill="${r.failed > 0 ? colour.failed.bg : colour.passed.bg}"><title>${text(`${r.experiment_id}: ${r.success_rate.toFixed(1)}% — ${r.passed} passed, ${r.flaky} flaky, ${r.failed} failed of ${r.total}`)}</title></circle>`
  )
  const first = runs[0]
  const last = runs[runs.length - 1]
  const dates =
    first === undefined || last === undefined
      ? []
      : [
          `<text class="tick" x="${num(at[0]!)}" y="${chartHeight - 12}" text-anchor="start">${text(day(first))}</text>`,
          runs.length > 1
            ? `<text class="tick" x="${num(at[runs.length - 1]!)}" y="${chartHeight - 12}" text-anchor="end">${text(day(last))}</text>`
            : ""
        ]
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${chartWidth} ${chartHeight}" width="100%" role="img" aria-label="Success rate of ${runs.length} runs over time">${grid.join("")}<path d="${line}" fill="none" stroke="#0969da" stroke-width="2"/>${points.join("")}${dates.join("")}</svg>`
}

const square = (status: Status | null, run: HistoryRun) => {
  const fill = status === null ? "#ffffff" : colour[status].bg
  const title = `${run.experiment_id}: ${status ?? "not in this run"}`
  return `<i class="sq" style="background:${fill}" title="${attr(title)}"></i>`
}

const strip = (statuses: ReadonlyArray<Status | null>, runs: ReadonlyArray<HistoryRun>) =>
  `<span class="strip">${statuses.map((s, i) => square(s, runs[i]!)).join("")}</span>`

const rate = (r: number | null) => (r === null ? "—" : `${r.toFixed(r % 1 === 0 ? 0 : 1)}%`)

const table = (head: string, rows: ReadonlyArray<string>, total: number) =>
  `<div class="panel"><table>${head}${rows.slice(0, rowLimit).join("")}</table>${total > rowLimit ? `<p class="sub">${total - rowLimit} more rows in ${jsonFileName}.</p>` : ""}</div>`

export const html = (h: History): string => {
  const runs = h.runs
  const last = runs[runs.length - 1]
  const tests = h.tests.map(
    (t) =>
      `<tr><td class="name">${text(t.name)}</td><td class="num">${rate(t.pass_rate)}</td><td>${strip(t.statuses, runs)}</td></tr>`
  )
  const cells = h.cells.map(
    (c) =>
      `<tr><td>${text(c.matrix ?? "—")}</td><td>${text(c.row)}</td><td>${text(c.column)}</td><td class="num">${rate(c.pass_rate)}</td><td>${strip(c.statuses, runs)}</td></tr>`
  )
  const older = h.runs_left_out === 0 ? "" : ` (${h.runs_left_out} older runs left out)`
  return [
    head(`${h.experiment_name} — history — testbed`),
    `<header><h1>${text(h.experiment_name)}: history</h1></header>`,
    `<p class="sub">${runs.length} runs${older}${runs[0] === undefined || last === undefined ? "" : `, ${text(day(runs[0]))} to ${text(day(last))}`}; oldest on the left</p>`,
    '<section class="cards">',
    card("runs", String(runs.length), "#59636e"),
    card("latest success rate", last === undefined ? "—" : `${last.success_rate.toFixed(1)}%`, "#0969da"),
    card("tests", String(h.tests.length), "#59636e"),
    card("never failed", String(h.tests.filter((t) => t.pass_rate === 100).length), colour.passed.bg),
    "</section>",
    "<h2>Success rate per run</h2>",
    `<div class="panel">${chart(runs)}</div>`,
    "<h2>Tests, lowest pass rate first</h2>",
    table("<tr><th>Test</th><th>Pass rate</th><th>Runs</th></tr>", tests, tests.length),
    ...(cells.length === 0
      ? []
      : [
          "<h2>Matrix cells</h2>",
          table(
            "<tr><th>Matrix</th><th>Row</th><th>Column</th><th>Pass rate</th><th>Runs</th></tr>",
            cells,
            cells.length
          )
        ]),
    foot()
  ].join("\n")
}

const encode = Schema.encodeSync(History)

/** `history.json` in pieces. */
export function* json(h: History): Generator<string> {
  yield* pieces(encode(h))
  yield "\n"
}
