// The timeline of the HTML report as inline SVG: one lane per test (its attempts, coloured by status) and under
// it one thinner lane per service (its state machine, coloured by phase), on a shared time axis.
import type { AttemptStatus, ExperimentSummary, ServiceResult, TestResult } from "../ExperimentSummary.ts"
import { attr, human, text } from "./escape.ts"
import { colour } from "./labels.ts"
import { wrap } from "./wrap.ts"

const width = 1140
/** The label column: as wide as the longest label needs, within these bounds; longer labels wrap (up to 4 lines). */
const minLabelWidth = 200
const maxLabelWidth = 440
const labelLines = 4
const lineHeight = 14
// Average advance of a character of the 12px semibold label font.
const charWidth = 7.2
const testLane = 24
const serviceLane = 16
const axisHeight = 28

const ms = (iso: string | null): number | null => {
  if (iso === null) return null
  const v = Date.parse(iso)
  return Number.isFinite(v) ? v : null
}

/** Service states grouped into phases a reader can tell apart. */
export const phaseOf = (state: string): { readonly name: string; readonly fill: string } => {
  switch (state) {
    case "RUNNING":
    case "READY":
      return { name: "running", fill: "#218bff" }
    case "ERROR":
      return { name: "error", fill: "#cf222e" }
    case "STOPPING":
    case "STOPPED":
    case "DESTROYING":
    case "DESTROYED":
      return { name: "stopping", fill: "#afb8c1" }
    default:
      return { name: "starting", fill: "#80ccff" }
  }
}

export const phases = ["starting", "running", "stopping", "error"] as const

const niceStep = (span: number): number => {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000]
  const wanted = span / 8
  return steps.find((s) => s >= wanted) ?? Math.ceil(wanted / 300_000) * 300_000
}

/** Every tick of one axis in one unit: ms under a second, then seconds, then minutes. */
const tickLabel = (t: number, step: number, span: number): string => {
  if (t === 0) return "0"
  if (span < 1000) return `${t} ms`
  if (step < 60_000) return `${(t / 1000).toFixed(step < 1000 ? 1 : 0)} s`
  return `${(t / 60_000).toFixed(step % 60_000 === 0 ? 0 : 1)} min`
}

const num = (n: number) => (Math.round(n * 10) / 10).toString()

interface Frame {
  readonly t0: number
  readonly span: number
  /** Width of the label column. */
  readonly label: number
}

const plotWidth = (f: Frame) => width - f.label - 20

const x = (f: Frame, t: number) => f.label + ((t - f.t0) / f.span) * plotWidth(f)

const labelWidthFor = (labels: Iterable<string>): number => {
  let longest = 0
  for (const label of labels) longest = Math.max(longest, label.length)
  return Math.min(maxLabelWidth, Math.max(minLabelWidth, Math.ceil(longest * charWidth) + 24))
}

/** A label's lines, as many as it needs (within `labelLines`) to be shown whole in the label column. */
const labelLinesOf = (f: Frame, full: string) => wrap(full, Math.floor((f.label - 16) / charWidth), labelLines)

/** A right-aligned label whose first line's baseline is at `y`; a label that had to be cut keeps its whole text as a title. */
const labelText = (cls: string, f: Frame, y: number, full: string) => {
  const { cut, lines } = labelLinesOf(f, full)
  const spans = lines.map(
    (line, i) => `<tspan x="${f.label - 8}" dy="${i === 0 ? 0 : lineHeight}">${text(line)}</tspan>`
  )
  return `<text class="${cls}" x="${f.label - 8}" y="${num(y)}" text-anchor="end">${cut ? `<title>${text(full)}</title>` : ""}${spans.join("")}</text>`
}

/** How much taller than one line a label makes its lane. */
const extraHeight = (f: Frame, full: string) => (labelLinesOf(f, full).lines.length - 1) * lineHeight

const bar = (f: Frame, y: number, h: number, from: number, to: number, fill: string, title: string, cls: string) => {
  const x0 = x(f, from)
  const w = Math.max(2, x(f, to) - x0)
  return `<rect class="${cls}" x="${num(x0)}" y="${num(y)}" width="${num(w)}" height="${h}" rx="3" fill="${fill}"><title>${text(title)}</title></rect>`
}

const serviceRows = (f: Frame, s: ServiceResult, y: number, end: number): Array<string> => {
  const out = [labelText("svc", f, y + serviceLane - 4, s.service_name)]
  // Consecutive states of one phase (PREPARING … STARTING) draw as one segment, titled with all of them.
  const segments: Array<{ from: number; to: number; fill: string; states: Array<string> }> = []
  s.state_history.forEach((change, i) => {
    const from = ms(change.timestamp)
    const next = s.state_history[i + 1]
    const to = next === undefined ? (ms(s.exited_at) ?? end) : ms(next.timestamp)
    if (from === null || to === null || change.to === "DESTROYED") return
    const phase = phaseOf(change.to)
    const last = segments[segments.length - 1]
    if (last !== undefined && last.fill === phase.fill && last.to === from) {
      last.to = Math.max(from, to)
      last.states.push(change.to)
    } else {
      segments.push({ from, to: Math.max(from, to), fill: phase.fill, states: [change.to] })
    }
  })
  for (const seg of segments) {
    out.push(
      bar(
        f,
        y + 3,
        serviceLane - 6,
        seg.from,
        seg.to,
        seg.fill,
        `${s.service_name}: ${seg.states.join(" → ")}`,
        "phase"
      )
    )
  }
  return out
}

const testRows = (
  f: Frame,
  t: TestResult,
  services: ReadonlyArray<ServiceResult>,
  y0: number,
  end: number
): { rows: Array<string>; height: number } => {
  const rows = [labelText("test", f, y0 + testLane - 8, t.name)]
  for (const a of t.attempts) {
    const from = ms(a.start_time) ?? ms(a.end_time)
    const to = ms(a.end_time) ?? end
    if (from === null) continue
    const title = `${t.name} — attempt ${a.attempt}: ${a.status}, ${human(a.duration_ms)}`
    rows.push(bar(f, y0 + 4, testLane - 8, from, Math.max(from, to), colour[a.status].bg, title, `attempt ${a.status}`))
  }
  let y = y0 + testLane + extraHeight(f, t.name)
  for (const s of services) {
    for (const row of serviceRows(f, s, y, end)) rows.push(row)
    y += serviceLane + extraHeight(f, s.service_name)
  }
  return { rows, height: y - y0 + 6 }
}

/** Above this many tests the timeline draws one aggregated chart instead of a lane per test. */
export const laneLimit = 500

const aggregatedHeight = 160
const buckets = 120

interface Span {
  readonly t0: number
  readonly end: number
}

/** First and last time of the run, in one pass (no spreading: a run may have hundreds of thousands of attempts). */
const spanOf = (s: ExperimentSummary): Span | null => {
  let t0 = Number.POSITIVE_INFINITY
  let end = Number.NEGATIVE_INFINITY
  const see = (iso: string | null) => {
    const v = ms(iso)
    if (v === null) return
    if (v < t0) t0 = v
    if (v > end) end = v
  }
  see(s.start_time)
  see(s.end_time)
  for (const t of s.tests.results) {
    for (const a of t.attempts) {
      see(a.start_time)
      see(a.end_time)
    }
  }
  return t0 === Number.POSITIVE_INFINITY ? null : { t0, end }
}

const axis = (frame: Frame, height: number): Array<string> => {
  const step = niceStep(frame.span)
  const ticks: Array<string> = []
  for (let t = 0; t <= frame.span + 0.5; t += step) {
    const tx = num(x(frame, frame.t0 + t))
    ticks.push(
      `<line class="grid" x1="${tx}" x2="${tx}" y1="${axisHeight - 6}" y2="${height - 4}"/>`,
      `<text class="tick" x="${tx}" y="${axisHeight - 10}" text-anchor="middle">${tickLabel(t, step, frame.span)}</text>`
    )
  }
  return ticks
}

const svg = (title: string, height: number, parts: ReadonlyArray<ReadonlyArray<string>>): string => {
  const out = [
    `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${num(height)}" width="100%" role="img" aria-label="${attr(title)}">`
  ]
  for (const part of parts) for (const line of part) out.push(line)
  out.push("</svg>")
  return out.join("\n")
}

/** One lane per test, its services under it. */
const lanes = (s: ExperimentSummary, tested: ReadonlyArray<TestResult>, span: Span): string => {
  const servicesOf = new Map<string, Array<ServiceResult>>()
  for (const v of s.services) {
    const list = servicesOf.get(v.test)
    if (list === undefined) servicesOf.set(v.test, [v])
    else list.push(v)
  }
  const frame: Frame = {
    t0: span.t0,
    span: Math.max(1, span.end - span.t0),
    label: labelWidthFor(tested.flatMap((t) => [t.name, ...(servicesOf.get(t.name) ?? []).map((v) => v.service_name)]))
  }
  const bands: Array<string> = []
  const body: Array<string> = []
  let y = axisHeight
  tested.forEach((t, i) => {
    const lane = testRows(frame, t, servicesOf.get(t.name) ?? [], y, span.end)
    if (i % 2 === 0) {
      bands.push(`<rect class="band" x="0" y="${num(y)}" width="${width}" height="${num(lane.height)}"/>`)
    }
    for (const row of lane.rows) body.push(row)
    y += lane.height
  })
  const height = y + 8
  const label = `Timeline of ${tested.length} tests and their services over ${human(frame.span)}`
  return svg(label, height, [bands, axis(frame, height), body])
}

/** Stacking order of the aggregated bars, bottom first. */
const statusOrder: ReadonlyArray<AttemptStatus> = [
  "passed",
  "failed",
  "timeout",
  "interrupted",
  "runner_lost",
  "unschedulable",
  "unsupported",
  "skipped"
]

/**
 * Too many tests for a lane each: attempts started per time slice, stacked by status, so the shape of a huge run
 * (when failures came, how the load went) still shows. Every bar has a title with its counts.
 */
const aggregated = (tested: ReadonlyArray<TestResult>, span: Span): string => {
  const frame: Frame = { t0: span.t0, span: Math.max(1, span.end - span.t0), label: minLabelWidth + 60 }
  const counts = Array.from({ length: buckets }, () => new Map<AttemptStatus, number>())
  let attempts = 0
  for (const t of tested) {
    for (const a of t.attempts) {
      const from = ms(a.start_time) ?? ms(a.end_time)
      if (from === null) continue
      const bucket = Math.min(buckets - 1, Math.max(0, Math.floor(((from - frame.t0) / frame.span) * buckets)))
      const map = counts[bucket] as Map<AttemptStatus, number>
      map.set(a.status, (map.get(a.status) ?? 0) + 1)
      attempts++
    }
  }
  let highest = 1
  for (const map of counts) {
    let total = 0
    for (const n of map.values()) total += n
    if (total > highest) highest = total
  }
  const top = axisHeight + 4
  const bottom = top + aggregatedHeight
  const slice = frame.span / buckets
  const bars: Array<string> = [
    labelText("test", frame, top + 12, `${highest} attempts`),
    labelText("svc", frame, bottom, "0"),
    labelText("svc", frame, top + aggregatedHeight / 2, `attempts started per ${human(slice)}`)
  ]
  counts.forEach((map, i) => {
    const from = frame.t0 + i * slice
    let y = bottom
    const parts: Array<string> = []
    for (const status of statusOrder) {
      const n = map.get(status) ?? 0
      if (n === 0) continue
      parts.push(`${n} ${status}`)
      const h = (n / highest) * aggregatedHeight
      y -= h
      const w = Math.max(1, x(frame, from + slice) - x(frame, from) - 1)
      const title = `${human(from - frame.t0)} – ${human(from + slice - frame.t0)}: ${n} ${status}`
      bars.push(
        `<rect class="bucket ${status}" x="${num(x(frame, from))}" y="${num(y)}" width="${num(w)}" height="${num(Math.max(h, 0.5))}" fill="${colour[status].bg}"><title>${text(title)}</title></rect>`
      )
    }
  })
  const height = bottom + 12
  const label = `Timeline of ${tested.length} tests (${attempts} attempts) over ${human(frame.span)}, aggregated: more than ${laneLimit} tests`
  return svg(label, height, [axis(frame, height), bars])
}

/** The SVG, or null when the log holds no timestamps to draw. */
export const render = (s: ExperimentSummary): string | null => {
  const span = spanOf(s)
  const tested = s.tests.results.filter((t) => t.attempts.length > 0)
  if (span === null || tested.length === 0) return null
  return tested.length <= laneLimit ? lanes(s, tested, span) : aggregated(tested, span)
}
