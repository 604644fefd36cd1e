// Folds resource events into the summary: per service, the peaks, totals and a bounded time series of its
// `service.resources` samples; per run, PANTHER's `resources` block from `experiment.resources` and those peaks.
import type { ResourceEvent } from "@testbed/events"
import type * as RS from "../ExperimentSummary.ts"

/** Points kept per service for the report's chart: every other one is dropped each time the series fills. */
export const maxSeriesPoints = 120

export interface ServiceUsageAcc {
  samples: number
  source: string
  peakRss: number
  cpuMs: number
  peakThreads: number
  peakOpenFiles: number
  peakProcesses: number
  readBytes: number
  writeBytes: number
  firstMillis: number | undefined
  /** Keep one sample in `stride` (doubled when the series fills), so the series spans the whole run. */
  stride: number
  readonly series: Array<RS.ResourcePoint>
}

export interface RunUsageAcc {
  diskUsageBytes: number | null
  totalLogBytes: number | null
  imagesBuilt: number | null
}

export const emptyRun = (): RunUsageAcc => ({ diskUsageBytes: null, totalLogBytes: null, imagesBuilt: null })

const emptyService = (): ServiceUsageAcc => ({
  samples: 0,
  source: "proc",
  peakRss: 0,
  cpuMs: 0,
  peakThreads: 0,
  peakOpenFiles: 0,
  peakProcesses: 0,
  readBytes: 0,
  writeBytes: 0,
  firstMillis: undefined,
  stride: 1,
  series: []
})

/** Adds one sample to the service's accumulator (created on its first sample). */
export const addSample = (
  acc: ServiceUsageAcc | undefined,
  sample: ResourceEvent.ResourceSample,
  timestamp: string
): ServiceUsageAcc => {
  const usage = acc ?? emptyService()
  usage.source = sample.source
  usage.peakRss = Math.max(usage.peakRss, sample.peakRssBytes)
  usage.cpuMs = Math.max(usage.cpuMs, sample.cpuMs)
  usage.peakThreads = Math.max(usage.peakThreads, sample.threads)
  usage.peakOpenFiles = Math.max(usage.peakOpenFiles, sample.openFiles)
  usage.peakProcesses = Math.max(usage.peakProcesses, sample.processes)
  usage.readBytes = Math.max(usage.readBytes, sample.readBytes)
  usage.writeBytes = Math.max(usage.writeBytes, sample.writeBytes)
  const millis = Date.parse(timestamp)
  if (usage.firstMillis === undefined && !Number.isNaN(millis)) usage.firstMillis = millis
  if (usage.samples % usage.stride === 0 && usage.firstMillis !== undefined && !Number.isNaN(millis)) {
    usage.series.push({ at_ms: millis - usage.firstMillis, rss_bytes: sample.rssBytes, cpu_ms: sample.cpuMs })
    if (usage.series.length >= maxSeriesPoints) {
      // Thin to every other point and keep half as many from now on: bounded, still evenly spread.
      const kept = usage.series.filter((_, index) => index % 2 === 0)
      usage.series.splice(0, usage.series.length, ...kept)
      usage.stride *= 2
    }
  }
  usage.samples++
  return usage
}

export const addRun = (acc: RunUsageAcc, data: (typeof ResourceEvent.ExperimentResources.Type)["data"]): void => {
  acc.diskUsageBytes = data.diskUsageBytes
  acc.totalLogBytes = data.totalLogBytes
  if (data.imagesBuilt !== undefined) acc.imagesBuilt = data.imagesBuilt
}

export const serviceResources = (usage: ServiceUsageAcc): RS.ServiceResources => ({
  samples: usage.samples,
  source: usage.source,
  peak_rss_bytes: usage.peakRss,
  cpu_ms: usage.cpuMs,
  peak_threads: usage.peakThreads,
  peak_open_files: usage.peakOpenFiles,
  peak_processes: usage.peakProcesses,
  read_bytes: usage.readBytes,
  write_bytes: usage.writeBytes,
  series: usage.series
})

const megabytes = (bytes: number | null): number | null =>
  bytes === null ? null : Math.round((bytes / 1024 / 1024) * 100) / 100

export const runResources = (run: RunUsageAcc, services: ReadonlyArray<ServiceUsageAcc>): RS.Resources => {
  const peak = services.length === 0 ? null : Math.max(...services.map((usage) => usage.peakRss))
  return {
    peak_memory_mb: megabytes(peak),
    disk_usage_mb: megabytes(run.diskUsageBytes),
    docker_images_built: run.imagesBuilt,
    total_log_size_mb: megabytes(run.totalLogBytes),
    peak_memory_bytes: peak,
    disk_usage_bytes: run.diskUsageBytes,
    total_log_size_bytes: run.totalLogBytes,
    cpu_time_ms: services.length === 0 ? null : services.reduce((total, usage) => total + usage.cpuMs, 0)
  }
}
