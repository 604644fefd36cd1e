/**
 * A `Comparison` as people read it: `comparison.md` (for a pull request comment or a CI summary) and
 * `comparison.html` (self-contained, no script, no network). Both list the changes that need a look first.
 */
import type { Change, Comparison, RunRef, TimingChange } from "./Comparison.ts"
import { human, md, text } from "./internal/escape.ts"
import { card, foot, head, pill } from "./internal/html/page.ts"
import { mark } from "./internal/labels.ts"
import type { Status } from "./ExperimentSummary.ts"

export const markdownFileName = "comparison.md"
export const htmlFileName = "comparison.html"

type Section = "newly_failing" | "newly_passing" | "still_failing" | "flaky" | "added" | "removed"

/** The lists in the order they are shown, with their headings. */
const sections: ReadonlyArray<readonly [Section, string]> = [
  ["newly_failing", "Newly failing"],
  ["newly_passing", "Newly passing"],
  ["still_failing", "Still failing"],
  ["flaky", "Flaky"],
  ["added", "Added"],
  ["removed", "Removed"]
]

const title = (c: Comparison) => c.current.experiment_name ?? c.current.experiment_id

const delta = (t: TimingChange) => {
  const diff = t.after_ms - t.before_ms
  const ratio = t.before_ms > 0 ? ` (×${(t.after_ms / t.before_ms).toFixed(2)})` : ""
  return `${diff >= 0 ? "+" : "−"}${human(Math.abs(diff))}${ratio}`
}

/** One line: "2 newly failing · 1 newly passing · …". */
const tally = (c: Comparison): string =>
  [
    ...sections.map(([key, heading]) => `${c[key].length} ${heading.toLowerCase()}`),
    `${c.timing.length + c.timing_left_out} timing change${c.timing.length + c.timing_left_out === 1 ? "" : "s"}`,
    `${c.unchanged} unchanged`
  ].join(" · ")

const runRows = (b: RunRef, a: RunRef): ReadonlyArray<readonly [string, string, string]> => [
  ["Run", b.experiment_id, a.experiment_id],
  ["Started", b.start_time ?? "—", a.start_time ?? "—"],
  ["Status", b.status, a.status],
  ["Tests", String(b.total), String(a.total)],
  ["Success rate", `${b.success_rate.toFixed(2)} %`, `${a.success_rate.toFixed(2)} %`],
  ["Duration", human(b.duration_seconds * 1000), human(a.duration_seconds * 1000)]
]

const mdStatus = (s: Status | null) => (s === null ? "—" : `${mark[s]} ${s}`)

const mdSection = (c: Comparison, key: Section, heading: string): Array<string> => {
  const list: ReadonlyArray<Change> = c[key]
  if (list.length === 0) return []
  return [
    `## ${heading} (${list.length})`,
    "",
    "| Test | Before | Now | Message |",
    "| --- | --- | --- | --- |",
    ...list.map(
      (t) =>
        `| ${md(t.name)} | ${mdStatus(t.before)} | ${mdStatus(t.after)} | ${t.error_message === null ? "" : md(t.error_message)} |`
    ),
    ""
  ]
}

const mdTiming = (c: Comparison): Array<string> =>
  c.timing.length === 0
    ? []
    : [
        `## Timing changes (${c.timing.length + c.timing_left_out})`,
        "",
        "| Test | Before | Now | Change |",
        "| --- | ---: | ---: | ---: |",
        ...c.timing.map((t) => `| ${md(t.name)} | ${human(t.before_ms)} | ${human(t.after_ms)} | ${delta(t)} |`),
        ...(c.timing_left_out === 0 ? [] : ["", `${c.timing_left_out} smaller changes not listed.`]),
        ""
      ]

export const markdown = (c: Comparison): string =>
  [
    `# Comparison: ${md(title(c))}`,
    "",
    "| | Baseline | Current |",
    "| --- | --- | --- |",
    ...runRows(c.baseline, c.current).map(([k, b, a]) => `| ${k} | ${md(b)} | ${md(a)} |`),
    "",
    `**${tally(c)}**`,
    "",
    ...sections.flatMap(([key, heading]) => mdSection(c, key, heading)),
    ...mdTiming(c)
  ].join("\n")

const htmlStatus = (s: Status | null) => (s === null ? "—" : pill(s))

const htmlSection = (c: Comparison, key: Section, heading: string): string => {
  const list: ReadonlyArray<Change> = c[key]
  if (list.length === 0) return ""
  const rows = list.map(
    (t) =>
      `<tr><td class="name">${text(t.name)}</td><td>${htmlStatus(t.before)}</td><td>${htmlStatus(t.after)}</td><td>${t.error_message === null ? "" : text(t.error_message)}</td></tr>`
  )
  return `<h2 id="${key}">${heading} (${list.length})</h2>\n<div class="panel"><table><tr><th>Test</th><th>Before</th><th>Now</th><th>Message</th></tr>${rows.join("")}</table></div>`
}

const htmlTiming = (c: Comparison): string => {
  if (c.timing.length === 0) return ""
  const rows = c.timing.map(
    (t) =>
      `<tr><td class="name">${text(t.name)}</td><td class="num">${human(t.before_ms)}</td><td class="num">${human(t.after_ms)}</td><td class="num">${text(delta(t))}</td></tr>`
  )
  const more = c.timing_left_out === 0 ? "" : `<p class="sub">${c.timing_left_out} smaller changes not listed.</p>`
  return `<h2 id="timing">Timing changes (${c.timing.length + c.timing_left_out})</h2>\n<div class="panel"><table><tr><th>Test</th><th>Before</th><th>Now</th><th>Change</th></tr>${rows.join("")}</table>${more}</div>`
}

const htmlCards = (c: Comparison): string =>
  [
    '<section class="cards">',
    card("newly failing", String(c.newly_failing.length), "#cf222e"),
    card("newly passing", String(c.newly_passing.length), "#1a7f37"),
    card("still failing", String(c.still_failing.length), "#bc4c00"),
    card("flaky", String(c.flaky.length), "#d4a72c"),
    card("timing changes", String(c.timing.length + c.timing_left_out), "#0969da"),
    card("unchanged", String(c.unchanged), "#59636e"),
    "</section>"
  ].join("\n")

export const html = (c: Comparison): string => {
  const runs = runRows(c.baseline, c.current)
    .map(([k, b, a]) => `<tr><th>${k}</th><td>${text(b)}</td><td>${text(a)}</td></tr>`)
    .join("")
  return [
    head(`${title(c)} — comparison — testbed`),
    `<header><h1>${text(title(c))}: what changed</h1></header>`,
    `<p class="sub">${text(tally(c))}</p>`,
    htmlCards(c),
    `<h2>Runs</h2>\n<div class="panel"><table><tr><th></th><th>Baseline</th><th>Current</th></tr>${runs}</table></div>`,
    ...sections.map(([key, heading]) => htmlSection(c, key, heading)),
    htmlTiming(c),
    foot()
  ].join("\n")
}
