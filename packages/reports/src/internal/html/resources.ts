// What the services used, on the run report: PANTHER's resources block as one line, then per sampled service a
// small memory chart (its sampled RSS over time, an inline SVG with nothing that runs) and its peaks. The peaks
// also go into the matrix cells' tooltips, so a reader comparing implementations sees them without scrolling.
import { ByteSize } from "@testbed/events"
import type { ExperimentSummary, ServiceResources, ServiceResult } from "../../ExperimentSummary.ts"
import { attr, human, text } from "../escape.ts"

/** Rows listed at most: the services with the highest peaks first. */
export const rowLimit = 200

const width = 160
const height = 28

const bytes = ByteSize.format

/** `peak 142.3 MB · CPU 1.2s · 11 threads · 23 files`: the peaks of one service. */
export const peaks = (r: ServiceResources): string =>
  `peak ${bytes(r.peak_rss_bytes)} · CPU ${human(r.cpu_ms)} · ${r.peak_threads} threads · ${r.peak_open_files} files`

/** The sampled RSS as a polyline scaled to the service's own peak. */
export const chart = (r: ServiceResources): string => {
  const points = r.series
  const lastAt = points[points.length - 1]?.at_ms ?? 0
  const top = Math.max(1, r.peak_rss_bytes, ...points.map((p) => p.rss_bytes))
  const xy = points
    .map((p) => {
      const x = lastAt === 0 ? 0 : (p.at_ms / lastAt) * width
      const y = height - (p.rss_bytes / top) * (height - 2) - 1
      return `${x.toFixed(1)},${y.toFixed(1)}`
    })
    .join(" ")
  const label = `resident memory over ${human(lastAt)}, ${points.length} points, peak ${bytes(r.peak_rss_bytes)}`
  return `<svg class="spark" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${attr(label)}"><polyline fill="none" stroke="#2563eb" stroke-width="1.5" points="${xy}"/></svg>`
}

const row = (v: ServiceResult, r: ServiceResources) =>
  `<tr><td>${text(v.test)}</td><td>${text(v.service_name)}</td><td>${chart(r)}</td><td class="num">${bytes(r.peak_rss_bytes)}</td>` +
  `<td class="num">${human(r.cpu_ms)}</td><td class="num">${r.peak_threads}</td><td class="num">${r.peak_open_files}</td>` +
  `<td class="num">${bytes(r.read_bytes)} / ${bytes(r.write_bytes)}</td>${v.killed_by === undefined ? "<td></td>" : `<td>killed by ${text(v.killed_by)}</td>`}</tr>`

const runLine = (s: ExperimentSummary): string => {
  const r = s.resources
  if (r === undefined) return ""
  const parts = [
    r.peak_memory_bytes === null ? null : `peak memory ${bytes(r.peak_memory_bytes)}`,
    r.cpu_time_ms === null ? null : `CPU ${human(r.cpu_time_ms)}`,
    r.disk_usage_bytes === null ? null : `disk ${bytes(r.disk_usage_bytes)}`,
    r.total_log_size_bytes === null ? null : `logs ${bytes(r.total_log_size_bytes)}`,
    r.docker_images_built === null ? null : `${r.docker_images_built} image(s) built`
  ].filter((part) => part !== null)
  return parts.length === 0 ? "" : `<p>${parts.join(" · ")}</p>`
}

/** The section, or nothing when the run measured nothing. */
export const section = (s: ExperimentSummary): string => {
  const sampled = s.services
    .flatMap((v) => (v.resources === undefined ? [] : [{ v, r: v.resources }]))
    .sort((a, b) => b.r.peak_rss_bytes - a.r.peak_rss_bytes)
  const line = runLine(s)
  if (sampled.length === 0 && line === "") return ""
  const table =
    sampled.length === 0
      ? ""
      : `<table><tr><th>Test</th><th>Service</th><th>Memory</th><th>Peak RSS</th><th>CPU</th><th>Threads</th><th>Files</th><th>Read / written</th><th></th></tr>${sampled
          .slice(0, rowLimit)
          .map(({ v, r }) => row(v, r))
          .join("")}</table>`
  const more =
    sampled.length > rowLimit
      ? `<p class="sub">${sampled.length} sampled services; the ${rowLimit} with the highest peaks are shown.</p>`
      : ""
  return `<h2>Resources</h2>\n<div class="panel">${line}${table}${more}</div>`
}

/** Per test, the peaks of its sampled services, for the matrix cells' tooltips. */
export const peaksByTest = (s: ExperimentSummary): ReadonlyMap<string, string> => {
  const byTest = new Map<string, Array<string>>()
  for (const v of s.services) {
    if (v.resources === undefined) continue
    const list = byTest.get(v.test) ?? []
    list.push(`${v.service_name}: ${peaks(v.resources)}`)
    byTest.set(v.test, list)
  }
  return new Map([...byTest].map(([test, list]) => [test, list.join("; ")]))
}
