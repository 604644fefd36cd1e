// The timeline of the HTML report as inline SVG: one lane per test (its attempts, coloured by status) and under
// it one thinner lane per service (its state machine, coloured by phase), on a shared time axis.
import type { RunSummary, ServiceResult, TestResult } from "../RunSummary.ts"
import { attr, human, text } from "./escape.ts"
import { colour } from "./labels.ts"

const width = 1100
const labelWidth = 260
const plotWidth = width - labelWidth - 20
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

const truncate = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s)

interface Frame {
  readonly t0: number
  readonly span: number
}

const x = (f: Frame, t: number) => labelWidth + ((t - f.t0) / f.span) * plotWidth

const bar = (f: Frame, y: number, h: number, from: number, to: number, fill: string, title: string, cls: string) => {
  const x0 = x(f, from)
  const w = Math.max(2, x(f, to) - x0)
  return `<rect class="${cls}" x="${num(x0)}" y="${num(y)}" width="${num(w)}" height="${h}" rx="3" fill="${fill}"><title>${text(title)}</title></rect>`
}

const serviceRows = (f: Frame, s: ServiceResult, y: number, end: number): Array<string> => {
  const out = [
    `<text class="svc" x="${labelWidth - 8}" y="${num(y + serviceLane - 4)}" text-anchor="end">${text(truncate(s.service_name, 30))}</text>`
  ]
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
  const rows = [
    `<text class="test" x="${labelWidth - 8}" y="${num(y0 + testLane - 8)}" text-anchor="end"><title>${text(t.name)}</title>${text(truncate(t.name, 34))}</text>`
  ]
  for (const a of t.attempts) {
    const from = ms(a.start_time) ?? ms(a.end_time)
    const to = ms(a.end_time) ?? end
    if (from === null) continue
    const title = `${t.name} — attempt ${a.attempt}: ${a.status}, ${human(a.duration_ms)}`
    rows.push(bar(f, y0 + 4, testLane - 8, from, Math.max(from, to), colour[a.status].bg, title, `attempt ${a.status}`))
  }
  let y = y0 + testLane
  for (const s of services) {
    rows.push(...serviceRows(f, s, y, end))
    y += serviceLane
  }
  return { rows, height: y - y0 + 6 }
}

/** The SVG, or null when the log holds no timestamps to draw. */
export const render = (s: RunSummary): string | null => {
  const times = [
    ms(s.start_time),
    ms(s.end_time),
    ...s.tests.results.flatMap((t) => t.attempts.flatMap((a) => [ms(a.start_time), ms(a.end_time)]))
  ].filter((v): v is number => v !== null)
  const tested = s.tests.results.filter((t) => t.attempts.length > 0)
  if (times.length === 0 || tested.length === 0) return null
  const t0 = Math.min(...times)
  const end = Math.max(...times)
  const frame: Frame = { t0, span: Math.max(1, end - t0) }
  const bands: Array<string> = []
  const body: Array<string> = []
  let y = axisHeight
  tested.forEach((t, i) => {
    const services = s.services.filter((v) => v.test === t.name)
    const lane = testRows(frame, t, services, y, end)
    if (i % 2 === 0) {
      bands.push(`<rect class="band" x="0" y="${num(y)}" width="${width}" height="${num(lane.height)}"/>`)
    }
    body.push(...lane.rows)
    y += lane.height
  })
  const height = y + 8
  const step = niceStep(frame.span)
  const ticks: Array<string> = []
  for (let t = 0; t <= frame.span + 0.5; t += step) {
    const tx = num(x(frame, t0 + t))
    ticks.push(
      `<line class="grid" x1="${tx}" x2="${tx}" y1="${axisHeight - 6}" y2="${height - 4}"/>`,
      `<text class="tick" x="${tx}" y="${axisHeight - 10}" text-anchor="middle">${tickLabel(t, step, frame.span)}</text>`
    )
  }
  const label = `Timeline of ${tested.length} tests and their services over ${human(frame.span)}`
  return [
    `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${num(height)}" width="100%" role="img" aria-label="${attr(label)}">`,
    ...bands,
    ...ticks,
    ...body,
    "</svg>"
  ].join("\n")
}
