import { assert, describe, it } from "@effect/vitest"
import * as HtmlReport from "../src/HtmlReport.ts"
import { maxSeriesPoints } from "../src/internal/resources.ts"
import { collecting } from "./support.ts"

const sample = (service: string, rss: number, cpuMs: number) => ({
  test: "m [a server, b client]",
  service,
  attempt: 1,
  source: "proc",
  cpuMs,
  rssBytes: rss,
  peakRssBytes: rss,
  processes: 1,
  threads: 7,
  openFiles: 20,
  readBytes: 0,
  writeBytes: 4096
})

describe("resources in the summary and the HTML report", () => {
  it("folds per-service peaks, a bounded series and PANTHER's resources block", () => {
    const { add, summary } = collecting()
    const test = "m [a server, b client]"
    add("experiment.started", "m", { name: "m" })
    add("test.registered", test, {
      name: test,
      participants: [{ service: "server", implementation: "a", type: "iut", role: "server" }],
      matrix: { row: "a", column: "b" }
    })
    add("test.started", test, { name: test, attempt: 1 })
    const samples = 1000
    for (let n = 0; n < samples; n++) {
      // Grows to 150 MB at the middle, then falls back: the peak is remembered.
      const rss = (n < samples / 2 ? n : samples - n) * 300_000
      add("service.resources", `${test}/server`, sample("server", rss, n * 10))
    }
    add("test.finished", test, { name: test, attempt: 1, status: "passed", durationMs: 1000 })
    add("experiment.resources", "m", { diskUsageBytes: 5_000_000, totalLogBytes: 1_000_000 })
    add("experiment.finished", "m", { status: "completed" })
    const s = summary()
    const server = s.services.find((v) => v.service_name === "server")
    assert.strictEqual(server?.resources?.samples, samples)
    assert.strictEqual(server?.resources?.peak_rss_bytes, 150_000_000)
    assert.strictEqual(server?.resources?.cpu_ms, (samples - 1) * 10)
    const series = server?.resources?.series ?? []
    assert.isAtMost(series.length, maxSeriesPoints)
    assert.isAtLeast(series.length, maxSeriesPoints / 4)
    // Evenly thinned: the series still spans the run from its first sample.
    assert.strictEqual(series[0]?.at_ms, 0)
    assert.isAbove(series[series.length - 1]?.at_ms ?? 0, samples * 0.7)
    assert.deepStrictEqual(s.resources, {
      peak_memory_mb: 143.05,
      disk_usage_mb: 4.77,
      docker_images_built: null,
      total_log_size_mb: 0.95,
      peak_memory_bytes: 150_000_000,
      disk_usage_bytes: 5_000_000,
      total_log_size_bytes: 1_000_000,
      cpu_time_ms: (samples - 1) * 10
    })
    const html = HtmlReport.render(s)
    assert.include(html, "<h2>Resources</h2>")
    assert.match(html, /<svg class="spark"[^>]*aria-label="resident memory over [^"]*, peak 150\.0 MB"/)
    assert.include(html, "peak memory 150.0 MB")
    // The matrix cell's tooltip carries the peaks of its test's services.
    assert.match(html, /title="m \[a server, b client\] — server: peak 150\.0 MB · CPU [^"]+ · 7 threads · 20 files"/)
  })

  it("a run without samples has no Resources section and null figures", () => {
    const { add, summary } = collecting()
    add("experiment.started", "m", { name: "m" })
    add("experiment.finished", "m", { status: "completed" })
    const s = summary()
    assert.strictEqual(s.resources?.peak_memory_bytes, null)
    assert.notInclude(HtmlReport.render(s), "<h2>Resources</h2>")
  })
})
