/**
 * A runner's work directory when it starts. One runner per work directory, held by `WORKDIR/runner.lock` for the
 * runner's life (a second runner on it would remove the first one's attempts and evict its bundles), and a runner's
 * attempts do not outlive its process (the engine runs an attempt of a runner that stopped again from the start,
 * here or elsewhere): so nothing in it is in use yet, and what a runner killed before left goes before this one takes
 * work.
 */
import { FileLock } from "@testbed/commands"
import { Duration, Effect, FileSystem, Path } from "effect"
import * as BundleCache from "../BundleCache.ts"
import { WorkdirInUse, WorkdirUnusable } from "../WorkdirErrors.ts"

/**
 * Holds `WORKDIR/runner.lock` until the scope closes. A runner that is still stopping (a restart) gets 5 s to let go;
 * a killed runner's lock is broken (its process is gone), so a SIGKILL never leaves the directory locked.
 */
export const hold = Effect.fn("Workdir.hold")(function* (workdir: string, runner: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  yield* fs
    .makeDirectory(workdir, { recursive: true })
    .pipe(Effect.mapError((error) => new WorkdirUnusable({ workdir, reason: error.message })))
  yield* FileLock.acquire({
    file: path.join(workdir, "runner.lock"),
    operation: `runner ${runner}`,
    timeout: Duration.seconds(5)
  }).pipe(
    Effect.catchTags({
      LockBusy: (busy) =>
        Effect.fail(
          new WorkdirInUse({
            workdir,
            holder: `${busy.operation}${busy.pid === null ? "" : ` (pid ${busy.pid}${busy.host === null ? "" : ` on ${busy.host}`})`}${busy.since === null ? "" : ` since ${busy.since}`}`
          })
        ),
      LockFileFailed: (failed) => Effect.fail(new WorkdirUnusable({ workdir, reason: failed.message }))
    })
  )
})

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
