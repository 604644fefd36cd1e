// Resource sampling of one service while it runs: its process tree read from /proc at the test's metrics interval
// (or, when it runs in a container of its own, the container's cgroup through the engine's stats), each reading
// published as `service.resources` with the peaks and totals so far. The latest figures stay on the
// service's runtime for `resource_below` assertions. Sampling never fails a test: a reading that cannot be taken
// (the process just ended) is skipped.
import { EventBus, type ResourceEvent } from "@testbed/events"
import { Deferred, type Duration, Effect, Option, Schedule, type Scope } from "effect"
import * as ProcessTree from "../ProcessTree.ts"
import { type Attempt, recordUsage, type ServiceRuntime } from "./attempt.ts"
import * as ContainerEngine from "./containerEngine.ts"

/** What one service used so far: the latest sample, and a way to take one now. */
export interface Usage {
  latest: ResourceEvent.ResourceSample | undefined
  /** Peaks and totals over every sample so far (threads and open files peak too, not just their latest). */
  peaks: Peaks | undefined
  readonly sampleNow: Effect.Effect<ResourceEvent.ResourceSample | undefined>
}

export interface Peaks {
  readonly peakRssBytes: number
  readonly cpuMs: number
  readonly peakThreads: number
  readonly peakOpenFiles: number
}

const peaksAfter = (peaks: Peaks | undefined, sample: ResourceEvent.ResourceSample): Peaks => ({
  peakRssBytes: sample.peakRssBytes,
  cpuMs: sample.cpuMs,
  peakThreads: Math.max(peaks?.peakThreads ?? 0, sample.threads),
  peakOpenFiles: Math.max(peaks?.peakOpenFiles ?? 0, sample.openFiles)
})

/** One reading in the sample's own terms, whatever it was read from; `highWaterBytes` is the source's own peak. */
type Reading = Omit<ResourceEvent.ResourceSample, keyof Identity | "source" | "peakRssBytes"> & {
  readonly highWaterBytes: number
}

/** Peaks only rise, totals never fall (an ended child's I/O is gone). */
const foldReading = (
  previous: ResourceEvent.ResourceSample | undefined,
  { highWaterBytes, ...reading }: Reading,
  identity: Identity,
  source: ResourceEvent.ResourceSample["source"]
): ResourceEvent.ResourceSample => ({
  ...identity,
  ...reading,
  source,
  cpuMs: Math.max(previous?.cpuMs ?? 0, reading.cpuMs),
  peakRssBytes: Math.max(previous?.peakRssBytes ?? 0, reading.rssBytes, highWaterBytes),
  readBytes: Math.max(previous?.readBytes ?? 0, reading.readBytes),
  writeBytes: Math.max(previous?.writeBytes ?? 0, reading.writeBytes)
})

/** Folds a tree reading into the figures so far. */
export const fold = (
  previous: ResourceEvent.ResourceSample | undefined,
  reading: ProcessTree.TreeReading,
  identity: Identity
): ResourceEvent.ResourceSample =>
  foldReading(
    previous,
    {
      cpuMs: reading.cpuMs,
      rssBytes: reading.rssBytes,
      highWaterBytes: reading.maxHwmBytes,
      processes: reading.processes,
      threads: reading.threads,
      openFiles: reading.openFiles,
      readBytes: reading.readBytes,
      writeBytes: reading.writeBytes
    },
    identity,
    "proc"
  )

/**
 * Folds a container reading the same way. A container's tasks are its processes and threads alike (the pids
 * controller counts both), and the engine does not count open files (0).
 */
export const foldContainer = (
  previous: ResourceEvent.ResourceSample | undefined,
  reading: ContainerEngine.ContainerReading,
  identity: Identity
): ResourceEvent.ResourceSample =>
  foldReading(
    previous,
    {
      cpuMs: reading.cpuMs,
      rssBytes: reading.memoryBytes,
      highWaterBytes: reading.peakBytes ?? 0,
      processes: reading.tasks,
      threads: reading.tasks,
      openFiles: 0,
      readBytes: reading.readBytes,
      writeBytes: reading.writeBytes
    },
    identity,
    "cgroup"
  )

type Identity = Pick<ResourceEvent.ResourceSample, "test" | "service" | "attempt">
type Reader = (
  previous: ResourceEvent.ResourceSample | undefined,
  identity: Identity
) => Effect.Effect<Option.Option<ResourceEvent.ResourceSample>, unknown>

/** How the service's figures are read: its local process tree, else its container, else not at all. */
const readerOf = (attempt: Attempt, runtime: ServiceRuntime): Reader | undefined => {
  const pid = runtime.process?.pid
  if (pid !== undefined) {
    return (previous, identity) =>
      Effect.map(
        ProcessTree.read(pid),
        Option.map((reading) => fold(previous, reading, identity))
      )
  }
  const container = attempt.environment.containerOf?.(runtime.plan.key)
  if (container === undefined) return undefined
  return (previous, identity) =>
    Effect.map(
      ContainerEngine.read(container),
      Option.map((reading) => foldContainer(previous, reading, identity))
    )
}

/** Starts sampling a started service until it is done; a service with no process or container to read is skipped. */
export const watch = Effect.fn("Resources.watch")(function* (
  attempt: Attempt,
  runtime: ServiceRuntime,
  interval: Duration.Duration,
  launchScope: Scope.Scope
) {
  const reader = readerOf(attempt, runtime)
  if (reader === undefined) {
    return yield* Effect.logWarning(
      `${runtime.id}: no resource metrics in ${attempt.environment.kind} (no local process or container to read)`
    )
  }
  const identity = { test: attempt.test.name, service: runtime.plan.key, attempt: attempt.number }
  const usage = yield* sampler(reader, identity, runtime.id)
  recordUsage(runtime, usage)
  const loop = Effect.repeat(usage.sampleNow, Schedule.spaced(interval))
  yield* Effect.forkIn(Effect.raceFirst(Effect.asVoid(loop), Deferred.await(runtime.done)), launchScope)
})

/** Samples a local process tree on demand (steps); publishes `service.resources` under `entityId`. */
export const processSampler = (pid: number, identity: Identity, entityId: string) =>
  sampler(
    (previous, id) =>
      Effect.map(
        ProcessTree.read(pid),
        Option.map((reading) => fold(previous, reading, id))
      ),
    identity,
    entityId
  )

/** The usage of one sampled thing: each `sampleNow` reads it, folds, publishes; a failed reading is skipped. */
const sampler = Effect.fnUntraced(function* (reader: Reader, identity: Identity, entityId: string) {
  const context = yield* Effect.context<EventBus.EventBus>()
  const sampleNow = Effect.gen(function* () {
    const read = yield* reader(usage.latest, identity)
    if (Option.isNone(read)) return usage.latest
    const sample = read.value
    usage.latest = sample
    usage.peaks = peaksAfter(usage.peaks, sample)
    yield* EventBus.emit({ type: "service.resources", entityId, data: sample })
    return sample
  }).pipe(
    Effect.provideContext(context),
    Effect.catchCause(() => Effect.succeed(usage.latest))
  )
  const usage: Usage = { latest: undefined, peaks: undefined, sampleNow }
  return usage
})
