/**
 * Stages as scoped effects: `up` either leaves the stage up as defined and recorded, or removes everything it
 * created (failure or interrupt alike); `down` is idempotent; `prune` removes what no recorded stage owns.
 * Everything created carries labels: testbed.namespace (this project's state directory), testbed.stage,
 * testbed.run, testbed.node / testbed.network. The steps live in `internal/` (up, down, status, prune), each a
 * named function of the project it works on.
 */
import { CommandRunner } from "@testbed/commands"
import type { EventBus } from "@testbed/events"
import { Context, type Duration, Effect, type FileSystem, Layer, Path } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import * as Catalog from "./Catalog.ts"
import { Docker, type EngineError } from "./Docker.ts"
import * as DockerExecRunner from "./DockerExecRunner.ts"
import type * as Impairment from "./Impairment.ts"
import { type CheckOptions, check } from "./internal/checkRun.ts"
import * as Lab from "./internal/lab.ts"
import * as Graph from "./Graph.ts"
import { down } from "./internal/down.ts"
import type { InteractiveIo } from "./internal/exec.ts"
import { recordDir, records } from "./internal/instance.ts"
import { recorded } from "./internal/targets.ts"
import { locked, type Project } from "./internal/project.ts"
import { type PruneOptions, prune } from "./internal/prune.ts"
import { containerOf, status } from "./internal/status.ts"
import { type Undone, type UpOptions, up } from "./internal/up.ts"
import * as Stage from "./Stage.ts"
import type { Loaded } from "./Stage.ts"
import type * as StageError from "./StageError.ts"
import { InvalidStageName } from "./StageError.ts"
import * as StageState from "./StageState.ts"

export type { CheckOptions, CheckRun } from "./internal/checkRun.ts"
export type { Outcome } from "./internal/grading.ts"
export type { ImpairOptions } from "./internal/lab.ts"
export type { PruneOptions } from "./internal/prune.ts"
export type { Measured } from "./internal/verify.ts"
export type { LinkStatus, NodeStatus, Status } from "./internal/status.ts"
export type { Undone, UpOptions, UpResult } from "./internal/up.ts"

export interface StagesOptions {
  /** Where the record of the current stage lives (default `.testbed` of the working directory). */
  readonly stateDir: string
  /** The catalog directory stage names are looked up in (default `stages`). */
  readonly catalog: string
  /** Containers created and started at once. Default 8. */
  readonly concurrency?: number
  /**
   * The stage lives only as long as the process that brought it up: once that process is gone (even SIGKILLed),
   * any later `up` or `prune` on this machine removes it, recorded or not. The docker environment of experiments
   * uses this; `testbed stage up` does not (its stage stays up after the command ends).
   */
  readonly ephemeral?: boolean
  /** How long `up`, `down` and `prune` wait for another one of the same project (state directory). Default 2 min. */
  readonly lockTimeout?: Duration.Duration
  /**
   * One copy of a stage among several on this host (`--instance alice`): its own record, names, bridges and block
   * of addresses. Without it, the project has one stage and bringing one up brings the one before down.
   */
  readonly instance?: string
}

/** One line for a person: what a failed or interrupted `up` undid. */
export const describeUndone = (undone: Undone): string => {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`
  const restored = undone.hostSettings === 0 ? "" : `, restored ${plural(undone.hostSettings, "host setting")}`
  return `up ${undone.reason}: removed ${plural(undone.containers, "container")} and ${plural(undone.networks, "network")}${restored}; nothing of it is left`
}

/** The shell `connect` opens: bash when the image has it, sh otherwise. */
export const shellCommand = [
  "/bin/sh",
  "-c",
  "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"
] as const

type Needs = Docker | FileSystem.FileSystem | Path.Path | ChildProcessSpawner.ChildProcessSpawner | EventBus.EventBus

const projectOf = (options: StagesOptions, path: Path.Path): Project => {
  const stateDir = path.resolve(options.stateDir)
  return {
    stateDir,
    instance: options.instance,
    recordDir: recordDir(path, stateDir, options.instance),
    catalog: path.resolve(options.catalog),
    namespace: StageState.namespaceOf(stateDir),
    concurrency: options.concurrency ?? 8,
    ephemeral: options.ephemeral ?? false,
    lockTimeout: options.lockTimeout
  }
}

/** A CommandRunner whose commands run in the node's container (see DockerExecRunner). */
const runnerOf = Effect.fn("Stages.runner")(function* (project: Project, node: string) {
  return yield* DockerExecRunner.make(yield* containerOf(project, node))
})

/**
 * A shell in the node. With a terminal as input: interactive, with a TTY. Otherwise (a pipe, a file, /dev/null):
 * the shell reads its commands from the input, without a TTY, and its output is passed through.
 */
const connectTo = Effect.fn("Stages.connect")(function* (project: Project, node: string, io: InteractiveIo) {
  const docker = yield* Docker
  const id = yield* containerOf(project, node)
  return yield* io.input.isTTY === true ? docker.interactive(id, shellCommand, io) : docker.piped(id, shellCommand, io)
})

const service = (options: StagesOptions, context: Context.Context<Needs>) => {
  // An instance's name becomes a directory under the state directory: checked before anything is done with it.
  const guard =
    options.instance === undefined || Stage.isValidName(options.instance)
      ? Effect.void
      : Effect.fail(
          new InvalidStageName({
            name: options.instance,
            reason: "an instance is named like a stage: letters, digits, '.', '_', '-'"
          })
        )
  // The service's methods need nothing from their caller: what they use was captured when it was built.
  const provide = <A, E>(effect: Effect.Effect<A, E, Needs>): Effect.Effect<A, E | InvalidStageName> =>
    Effect.andThen(guard, Effect.provideContext(effect, context))
  const project = projectOf(options, Context.get(context, Path.Path))
  return {
    namespace: project.namespace,
    stateDir: project.stateDir,
    catalog: project.catalog,
    list: provide(Catalog.list(project.catalog)),
    load: (ref: string) => provide(Catalog.load(ref, project.catalog)),
    up: (loaded: Loaded, upOptions?: UpOptions) => provide(locked(project, "up", up(project, loaded, upOptions))),
    down: () => provide(locked(project, "down", down(project))),
    status: () => provide(status(project)),
    containerOf: (node: string) => provide(containerOf(project, node)),
    prune: (pruneOptions?: PruneOptions) => provide(locked(project, "prune", prune(project, pruneOptions))),
    runner: (node: string) => provide(runnerOf(project, node)),
    /** Sets the impairment of `NODE:IFACE` (replacing what it had); `verify` measures it against the peer. */
    impair: (target: string, settings: Impairment.Settings, impairOptions?: Lab.ImpairOptions) =>
      provide(locked(project, "impair", Lab.impair(project, target, settings, impairOptions))),
    /** Takes the link of `NODE:IFACE` down and up on a schedule, in the foreground. */
    flap: (target: string, schedule: Impairment.Flap) => provide(Lab.flap(project, target, schedule)),
    /** Runs the checks of one or more instances; the event log and class table go to `options.output`. */
    check: (checkOptions: CheckOptions) => provide(check(project, checkOptions)),
    /** Every stage of the project that is up: its own and each instance's. */
    upNow: () => provide(Effect.map(records(project.stateDir), (all) => all.map((r) => r.current))),
    /** The topology of a stage (a catalog name or a path), with addresses and impairments of its run if it is up. */
    graph: (ref: string) => provide(graphOf(project, ref)),
    connect: (node: string, io: InteractiveIo) => provide(connectTo(project, node, io))
  }
}

/** The service for one project, using the engine, file system and bus in context. */
/** The stage's picture: as running when this project's instance has it up, else as defined. */
const graphOf = Effect.fn("Stages.graph")(function* (project: Project, ref: string) {
  const loaded = yield* Catalog.load(ref, project.catalog)
  const running = yield* Effect.option(recorded(project))
  if (running._tag === "Some" && running.value.current.name === loaded.stage.name) {
    const rec = running.value
    return Graph.fromStage(rec.loaded.stage, { addresses: rec.addresses }, rec.current.impairments ?? {})
  }
  return Graph.fromStage(loaded.stage)
})

export const make = (options: StagesOptions) =>
  Effect.map(Effect.context<Needs>(), (context) => service(options, context))

type Service = ReturnType<typeof service>

export class Stages extends Context.Service<Stages, Service>()("@testbed/stages/Stages") {
  /** `CommandRunner` for a node of the current stage: experiments run their commands there the same way. */
  static readonly runnerLayerFor = (
    node: string
  ): Layer.Layer<CommandRunner.CommandRunner, StageError.StageError, Stages> =>
    Layer.effect(
      CommandRunner.CommandRunner,
      Stages.use((stages) => stages.runner(node))
    )

  static readonly layer = (options: StagesOptions): Layer.Layer<Stages, never, Needs> =>
    Layer.effect(Stages, make(options))
}

export type { EngineError }
