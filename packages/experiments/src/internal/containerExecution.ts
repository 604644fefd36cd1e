// The execution environment of a service that runs in a container of its own (the docker environment): its memory
// limit is the container's, set through the engine (swap included, so it is a hard limit); its CPU time limit is
// the shell's `ulimit -t` around its command (the image's /bin/sh, which the node's idle shell already needs).
// strace, valgrind and perf are not run in containers: the image would need them; the service runs without, with a
// warning (and `--dry-run` says so).
import { Effect } from "effect"
import type { Execution } from "../ExperimentConfig.ts"
import type { ServiceRuntime } from "./attempt.ts"
import * as ContainerEngine from "./containerEngine.ts"

/** What was applied to the container, read after the service ends to say which limit ended it. */
export interface ContainerApplied {
  readonly container: string
  readonly memoryBytes: number | undefined
}

/** Why each declared environment cannot run in a container (the tools; limits go through the engine). */
export const unsupported = (execution: Execution): ReadonlyArray<string> => [
  ...(execution.strace === true ? ["strace: runs on localhost only, not in a container"] : []),
  ...(execution.valgrind === true ? ["valgrind: runs on localhost only, not in a container"] : []),
  ...(execution.perf === true ? ["perf: runs on localhost only, not in a container"] : [])
]

/** The argv under `ulimit -t`: the shell sets the limit, then becomes the service (nothing is interpolated). */
export const underCpuLimit = (argv: ReadonlyArray<string>, seconds: number): ReadonlyArray<string> => [
  "sh",
  "-c",
  'ulimit -t "$0" && exec "$@"',
  String(seconds),
  ...argv
]

/** Sets the container's memory limit when one is declared; an engine that refuses it leaves a warning. */
export const apply = Effect.fn("ContainerExecution.apply")(function* (
  runtime: ServiceRuntime,
  execution: Execution,
  container: string
) {
  for (const reason of unsupported(execution)) yield* Effect.logWarning(`${runtime.id}: ${reason}: running without it`)
  const memory = execution.limits?.memory
  if (memory === undefined) return { container, memoryBytes: undefined }
  return yield* ContainerEngine.limitMemory(container, memory).pipe(
    Effect.as<ContainerApplied>({ container, memoryBytes: memory }),
    Effect.catch((error) =>
      Effect.as(Effect.logWarning(`${runtime.id}: no memory limit: ${error.message}`), {
        container,
        memoryBytes: undefined
      })
    )
  )
})

/**
 * Whether the container's memory limit ended the service: it was killed (SIGKILL; `docker exec` reports it as exit
 * code 137) and the group hit its limit (cgroup v1 counts it) or its high-water mark reached the limit.
 */
export const memoryLimitKilled = Effect.fn("ContainerExecution.memoryLimitKilled")(function* (
  applied: ContainerApplied,
  killed: boolean
) {
  const limit = applied.memoryBytes
  if (limit === undefined || !killed) return false
  const reading = yield* ContainerEngine.read(applied.container).pipe(Effect.option)
  if (reading._tag === "None" || reading.value._tag === "None") return false
  const figures = reading.value.value
  return figures.limitHits > 0 || (figures.peakBytes ?? 0) >= limit * 0.95
})
