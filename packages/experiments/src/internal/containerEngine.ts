// What the harness asks the container engine about one service's container: its resources (the stats API, one
// reading without waiting for a second one) and its memory limit (a live update of the container). The engine is
// the one DOCKER_HOST names, as for stages. Docker's answer differs with the host's cgroups: v1 has the group's
// high-water mark (`max_usage`) and the times it hit its limit (`failcnt`); v2 has neither, so the highest usage
// sampled stands for the peak.
import type Dockerode from "dockerode"
import { Duration, Effect, Option, Schema } from "effect"

/** The engine did not answer about a container, or answered something else than expected. */
export class ContainerEngineFailed extends Schema.TaggedError<ContainerEngineFailed>()("ContainerEngineFailed", {
  container: Schema.String,
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `container ${this.container.slice(0, 12)}: ${this.operation}: ${this.reason}`
  }
}

const Figure = Schema.optionalKey(Schema.Finite)

/** The part of the engine's stats answer sampling reads (other keys are ignored). */
export const StatsAnswer = Schema.Struct({
  pids_stats: Schema.optionalKey(Schema.Struct({ current: Figure })),
  cpu_stats: Schema.optionalKey(
    Schema.Struct({ cpu_usage: Schema.optionalKey(Schema.Struct({ total_usage: Figure })) })
  ),
  memory_stats: Schema.optionalKey(
    Schema.Struct({
      usage: Figure,
      max_usage: Figure,
      failcnt: Figure,
      stats: Schema.optionalKey(Schema.Record(Schema.String, Schema.Finite))
    })
  ),
  blkio_stats: Schema.optionalKey(
    Schema.Struct({
      io_service_bytes_recursive: Schema.optionalKey(
        Schema.NullOr(Schema.Array(Schema.Struct({ op: Schema.String, value: Schema.Finite })))
      )
    })
  )
})
export type StatsAnswer = typeof StatsAnswer.Type

/** One reading of a container's cgroup. */
export interface ContainerReading {
  readonly cpuMs: number
  /** Memory in use, less the page cache the kernel can drop (as `docker stats` shows it). */
  readonly memoryBytes: number
  /** The group's high-water mark (page cache included), when the engine says (cgroup v1). */
  readonly peakBytes: number | undefined
  /** Tasks (processes and threads) in the group. */
  readonly tasks: number
  readonly readBytes: number
  readonly writeBytes: number
  /** How often the group hit its memory limit (cgroup v1; 0 where unknown). */
  readonly limitHits: number
}

const ioBytes = (answer: StatsAnswer, op: string): number =>
  (answer.blkio_stats?.io_service_bytes_recursive ?? [])
    .filter((entry) => entry.op.toLowerCase() === op)
    .reduce((sum, entry) => sum + entry.value, 0)

/** The reading in an answer; None when the container does not run (its answer has no memory figures). */
export const readingOf = (answer: StatsAnswer): Option.Option<ContainerReading> => {
  const memory = answer.memory_stats
  if (memory?.usage === undefined) return Option.none()
  const stats = memory.stats ?? {}
  // v1 names it total_inactive_file (hierarchical) or inactive_file, v2 inactive_file.
  const cache = stats.total_inactive_file ?? stats.inactive_file ?? 0
  return Option.some({
    cpuMs: (answer.cpu_stats?.cpu_usage?.total_usage ?? 0) / 1e6,
    memoryBytes: Math.max(0, memory.usage - (cache < memory.usage ? cache : 0)),
    peakBytes: memory.max_usage,
    tasks: answer.pids_stats?.current ?? 0,
    readBytes: ioBytes(answer, "read"),
    writeBytes: ioBytes(answer, "write"),
    limitHits: memory.failcnt ?? 0
  })
}

// One client for the process (dockerode keeps no connection open between calls), loaded on first use: a run
// without containers must not pay for loading dockerode (LazyModules.test.ts).
let client: Promise<Dockerode> | undefined
const engine = (): Promise<Dockerode> => {
  client ??= import("dockerode").then((module) => new module.default())
  return client
}

const reasonOf = (error: unknown): string => {
  const e = error as { json?: { message?: string } | null; message?: string } | undefined
  return e?.json?.message ?? e?.message ?? String(error)
}

/** A slow engine must not hold a sample (or a service's start) for long. */
const deadline = Duration.seconds(10)

const call = <A>(container: string, operation: string, run: (handle: Dockerode.Container) => Promise<A>) =>
  Effect.tryPromise({
    try: () => engine().then((docker) => run(docker.getContainer(container))),
    catch: (error) => new ContainerEngineFailed({ container, operation, reason: reasonOf(error) })
  }).pipe(
    Effect.timeoutOrElse({
      duration: deadline,
      orElse: () =>
        Effect.fail(
          new ContainerEngineFailed({ container, operation, reason: `no answer in ${Duration.format(deadline)}` })
        )
    })
  )

/** Reads the container's cgroup now; None when it does not run. */
export const read = Effect.fn("ContainerEngine.read")(function* (container: string) {
  const answer = yield* call(container, "stats", (handle) => handle.stats({ stream: false, "one-shot": true }))
  const decoded = yield* Schema.decodeUnknownEffect(StatsAnswer)(answer).pipe(
    Effect.mapError(
      (error) =>
        new ContainerEngineFailed({ container, operation: "stats", reason: `unexpected answer: ${error.message}` })
    )
  )
  return readingOf(decoded)
})

/** Holds the container (all it runs) under `bytes` of memory, swap included, from now on. */
export const limitMemory = Effect.fn("ContainerEngine.limitMemory")(function* (container: string, bytes: number) {
  yield* call(container, "update", (handle) => handle.update({ Memory: bytes, MemorySwap: bytes }))
})
