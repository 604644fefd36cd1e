// What a run left on disk, measured once its tests are over and published as `experiment.resources`: the size of
// the run directory and of the services' and steps' logs (PANTHER's `resources` block: disk usage, log size).
import { EventBus } from "@testbed/events"
import { Effect, FileSystem, Path } from "effect"

/** Entries walked at most: a run that wrote more is measured up to here (its figures are then lower bounds). */
export const maxEntries = 200_000

export interface DiskUsage {
  readonly diskUsageBytes: number
  readonly totalLogBytes: number
}

const isLog = (name: string): boolean => name.endsWith(".log") || name.endsWith(".jsonl")

/** Sizes of every file under `dir` (a symbolic link to a file counts as that file; directories are not followed). */
export const measure = Effect.fn("RunUsage.measure")(function* (dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const names = yield* fs.readDirectory(dir, { recursive: true }).pipe(Effect.orElseSucceed(() => []))
  let diskUsageBytes = 0
  let totalLogBytes = 0
  for (const name of names.slice(0, maxEntries)) {
    const info = yield* fs.stat(path.join(dir, name)).pipe(Effect.option)
    if (info._tag === "None" || info.value.type !== "File") continue
    const size = Number(info.value.size)
    diskUsageBytes += size
    if (isLog(name)) totalLogBytes += size
  }
  return { diskUsageBytes, totalLogBytes } satisfies DiskUsage
})

/** Measures the run directory and publishes `experiment.resources`; a failure to measure is a warning only. */
export const publish = Effect.fn("RunUsage.publish")(function* (
  runDir: string,
  experiment: string,
  imagesBuilt?: number
) {
  const usage = yield* measure(runDir)
  yield* EventBus.emit({
    type: "experiment.resources",
    entityId: experiment,
    data: imagesBuilt === undefined ? usage : { ...usage, imagesBuilt }
  })
})
