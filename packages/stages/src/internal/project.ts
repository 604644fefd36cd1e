// One project's view of the engine: the state directory that records its stage, the namespace label derived from
// it, the catalog names are looked up in, and how much runs at once. Every step of up/down/status/prune takes it
// as its explicit input, so the steps are plain module-level functions.
import type { Duration, Effect, FileSystem, Path } from "effect"
import type { StageBusy, StateFileFailed } from "../StageError.ts"
import { withLock } from "./lock.ts"

export interface Project {
  /** The project's state directory: its lock, its namespace. */
  readonly stateDir: string
  /** One copy of a stage among several (`--instance NAME`); undefined for the project's one stage. */
  readonly instance?: string | undefined
  /** Where this instance's record is (`stateDir` itself, or `stateDir/instances/NAME`). */
  readonly recordDir: string
  readonly catalog: string
  readonly namespace: string
  readonly concurrency: number
  readonly ephemeral: boolean
  readonly lockTimeout?: Duration.Duration | undefined
}

/** Runs `effect` holding the project's lock (one up/down/prune at a time per state directory). */
/** Whether labels belong to this project's instance (resources of older versions have no instance label). */
export const ownInstance = (project: Project, labels: Readonly<Record<string, string>>): boolean =>
  (labels["testbed.instance"] ?? "") === (project.instance ?? "")

export const locked = <A, E, R>(
  project: Project,
  operation: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | StageBusy | StateFileFailed, R | FileSystem.FileSystem | Path.Path> =>
  withLock(
    { stateDir: project.stateDir, operation, ...(project.lockTimeout ? { timeout: project.lockTimeout } : {}) },
    effect
  )
