// One `up`, `down` or `prune` at a time per project, across processes: `<stateDir>/stage.lock`, held through
// @testbed/commands' FileLock (a whole, atomically linked file naming its holder; a dead holder's lock is broken).
// Its errors are the stage's own: `StageBusy` names the operation running, `StateFileFailed` the file.
import { FileLock } from "@testbed/commands"
import { type Duration, Effect, Exit, FileSystem, Path, Scope } from "effect"
import { StageBusy, StateFileFailed } from "../StageError.ts"

export interface LockOptions {
  readonly stateDir: string
  readonly operation: string
  /** How long to wait for another holder; default 2 minutes. */
  readonly timeout?: Duration.Duration
}

/** The lock's errors as the stage's. */
const asStageError =
  (stateDir: string) =>
  (error: FileLock.LockBusy | FileLock.LockFileFailed): StageBusy | StateFileFailed =>
    error._tag === "LockBusy"
      ? new StageBusy({
          stateDir,
          operation: error.operation,
          pid: error.pid,
          host: error.host,
          since: error.since,
          waitedMs: error.waitedMs
        })
      : new StateFileFailed({ path: error.path, reason: error.reason })

/** Runs `effect` holding the project's stage lock; the lock is released when it ends, however it ends. */
export const withLock = Effect.fn("StageLock.withLock")(function* <A, E, R>(
  options: LockOptions,
  effect: Effect.Effect<A, E, R>
): Effect.fn.Return<A, E | StageBusy | StateFileFailed, R | FileSystem.FileSystem | Path.Path> {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  yield* fs
    .makeDirectory(options.stateDir, { recursive: true })
    .pipe(Effect.mapError((e) => new StateFileFailed({ path: options.stateDir, reason: e.message })))
  // The lock's own scope: `effect` keeps whatever scope it is given, as it did.
  const scope = yield* Scope.make()
  const held = FileLock.acquire({
    file: path.join(options.stateDir, "stage.lock"),
    operation: options.operation,
    ...(options.timeout === undefined ? {} : { timeout: options.timeout })
  }).pipe(Scope.provide(scope), Effect.mapError(asStageError(options.stateDir)))
  return yield* Effect.andThen(held, effect).pipe(Effect.ensuring(Scope.close(scope, Exit.void)))
})
