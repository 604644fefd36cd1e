/**
 * A runner's work directory when it starts. One runner per work directory, and a runner's attempts do not outlive
 * its process (the engine runs an attempt of a runner that stopped again from the start, here or elsewhere): so
 * nothing in it is in use yet, and what a runner killed before left goes before this one takes work.
 */
import { Effect, FileSystem, Path } from "effect"
import * as BundleCache from "../BundleCache.ts"

/**
 * Removes the attempts' directories a killed runner left (`runs/`, `AttemptRunner`'s: an attempt run again here
 * would otherwise find the killed run's files in its own directory and send them as its own) and its warm-up's
 * (`warm-up-PID`), then brings the bundle cache to its bound (`BundleCache.atStart`).
 */
export const atStart = Effect.fn("Workdir.atStart")(function* (workdir: string, bundles: BundleCache.Cache) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const names = yield* fs.readDirectory(workdir).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
  const stale = names.filter((name) => name === "runs" || name.startsWith("warm-up-"))
  for (const name of stale) yield* Effect.ignore(fs.remove(path.join(workdir, name), { recursive: true }))
  if (stale.length > 0)
    yield* Effect.logInfo(`runner work directory: removed ${stale.join(", ")}, left by a runner stopped before`)
  return yield* BundleCache.atStart(bundles)
})
