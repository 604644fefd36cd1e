/**
 * What a service used while it ran, sampled at the experiment's metrics interval (`service.resources`), and what
 * the run as a whole left on disk (`experiment.resources`). Figures are cumulative or peaks since the service
 * started, so the last sample alone tells its totals, and a lost sample loses no total.
 */
import { Schema } from "effect"
import { family } from "./Event.ts"

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/** One reading of a service's processes (its whole process tree) or of its container. */
export const ResourceSample = Schema.Struct({
  test: Schema.String,
  service: Schema.String,
  attempt: Schema.Int,
  /** Where the figures come from: `/proc` of the local process tree, or the container's cgroup. */
  source: Schema.Literals(["proc", "cgroup"]),
  /** User + system CPU time of the tree so far, its ended children included, in milliseconds. */
  cpuMs: Schema.Finite,
  /** Resident memory of the tree now, in bytes. */
  rssBytes: Count,
  /** Highest resident memory seen so far (the tree's sum at a sample, or one process's own high-water mark). */
  peakRssBytes: Count,
  processes: Count,
  threads: Count,
  openFiles: Count,
  /** Bytes the tree read from and wrote to storage so far (`/proc/PID/io`; 0 where the kernel does not say). */
  readBytes: Count,
  writeBytes: Count
})
export type ResourceSample = typeof ResourceSample.Type

export const ServiceResources = family("service.resources", "service", ResourceSample)

export const ExperimentResources = family(
  "experiment.resources",
  "experiment",
  Schema.Struct({
    /** Everything in the run directory when the tests were over (bytes). */
    diskUsageBytes: Count,
    /** The services' and steps' log files (bytes). */
    totalLogBytes: Count,
    /** Container images the run built, when the environment says (absent: not known). */
    imagesBuilt: Schema.optionalKey(Count)
  })
)

export const ResourceEvent = Schema.Union([ServiceResources, ExperimentResources])
export type ResourceEvent = typeof ResourceEvent.Type
