/**
 * Stages as scoped effects: `up` either leaves the stage up as defined and recorded, or removes everything it
 * created (failure or interrupt alike); `down` is idempotent; `prune` removes what no recorded stage owns.
 * Everything created carries labels: testbed.namespace (this project's state directory), testbed.stage,
 * testbed.run, testbed.node / testbed.network.
 */
import { randomUUID } from "node:crypto"
import { homedir } from "node:os"
import { CommandRunner } from "@testbed/commands"
import { EventBus, type StageEvent, type TestbedEvent } from "@testbed/events"
import { Clock, Context, Duration, Effect, Exit, FileSystem, Layer, Option, Path, Ref } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import * as Catalog from "./Catalog.ts"
import { Docker, type EngineError } from "./Docker.ts"
import * as DockerExecRunner from "./DockerExecRunner.ts"
import * as HostSettings from "./HostSettings.ts"
import * as Cleanup from "./internal/cleanup.ts"
import * as Images from "./internal/images.ts"
import { withLock } from "./internal/lock.ts"
import * as Owner from "./internal/owner.ts"
import * as Plan from "./internal/plan.ts"
import type { InteractiveIo } from "./internal/exec.ts"
import { waitReady } from "./internal/readiness.ts"
import type { Loaded } from "./Stage.ts"
import type * as StageError from "./StageError.ts"
import { HookFailed, HostSettingFailed, NodeNotFound, NoStageUp, StateFileFailed } from "./StageError.ts"
import * as StageState from "./StageState.ts"

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
}

export interface NodeStatus {
  readonly node: string
  readonly container: string
  readonly id: string
  readonly state: string
  readonly status: string
  readonly health: string | null
  readonly addresses: Readonly<Record<string, string>>
}

export interface Status {
  readonly current: StageState.Current | null
  readonly nodes: ReadonlyArray<NodeStatus>
}

/** What a failed or interrupted `up` removed and put back before it ended. */
export interface Undone {
  readonly reason: "failed" | "interrupted"
  readonly containers: number
  readonly networks: number
  readonly hostSettings: number
}

/** One line for a person: what a failed or interrupted `up` undid. */
export const describeUndone = (undone: Undone): string => {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`
  const restored = undone.hostSettings === 0 ? "" : `, restored ${plural(undone.hostSettings, "host setting")}`
  return `up ${undone.reason}: removed ${plural(undone.containers, "container")} and ${plural(undone.networks, "network")}${restored}; nothing of it is left`
}

export interface UpOptions {
  /** Build images from their context even when present. */
  readonly rebuild?: boolean
  /** Told what was undone when `up` fails or is interrupted (the CLI prints it). */
  readonly onUndone?: (undone: Undone) => Effect.Effect<void>
}

/** The shell `connect` opens: bash when the image has it, sh otherwise. */
export const shellCommand = [
  "/bin/sh",
  "-c",
  "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"
] as const

const healthOf = (status: string): string | null => /\((healthy|unhealthy|health: starting)\)/.exec(status)?.[1] ?? null

export const make = (options: StagesOptions) =>
  Effect.gen(function* () {
    const docker = yield* Docker
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const bus = yield* EventBus.EventBus
    const context = yield* Effect.context<
      Docker | FileSystem.FileSystem | Path.Path | ChildProcessSpawner.ChildProcessSpawner
    >()
    // The service's methods need nothing from their caller: what they use was captured when it was built.
    const provide = <A, E>(
      effect: Effect.Effect<A, E, Docker | FileSystem.FileSystem | Path.Path | ChildProcessSpawner.ChildProcessSpawner>
    ): Effect.Effect<A, E> => Effect.provideContext(effect, context)
    const stateDir = path.resolve(options.stateDir)
    const catalog = path.resolve(options.catalog)
    const namespace = StageState.namespaceOf(stateDir)
    const concurrency = options.concurrency ?? 8
    const emit = <T extends StageEvent.StageEvent["type"]>(type: T, stage: string, data: TestbedEvent.DataOf<T>) =>
      Effect.asVoid(bus.emit({ type, entityId: stage, data }))

    const removeLabelled = (
      labels: Readonly<Record<string, string>>,
      keep?: (l: Readonly<Record<string, string>>) => Effect.Effect<boolean, never, FileSystem.FileSystem | Path.Path>
    ) =>
      Cleanup.removeLabelled(docker, concurrency, labels, keep).pipe(
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(Path.Path, path)
      )
    const removeOrphans = Cleanup.removeOrphans(docker, concurrency).pipe(
      Effect.provideService(FileSystem.FileSystem, fs),
      Effect.provideService(Path.Path, path)
    )
    const locked = <A, E, R>(operation: string, effect: Effect.Effect<A, E, R>) =>
      withLock({ stateDir, operation, ...(options.lockTimeout ? { timeout: options.lockTimeout } : {}) }, effect)

    const containersOf = (stage: string) =>
      docker.listContainers({ [Plan.label.namespace]: namespace, [Plan.label.stage]: stage })

    const hook =
      (phase: "up" | "down", containerOf: (node: string) => string | undefined) =>
      (h: { readonly node: string; readonly command: ReadonlyArray<string>; readonly timeout?: Duration.Duration }) =>
        Effect.gen(function* () {
          const id = containerOf(h.node)
          let output = ""
          const collect = (bytes: Uint8Array) => {
            output += Buffer.from(bytes).toString("utf8")
          }
          const failed = (exitCode: number | null) =>
            new HookFailed({ phase, node: h.node, command: h.command, exitCode, output })
          if (id === undefined) return yield* failed(null)
          const code = yield* docker.exec(id, { cmd: h.command }, { stdout: collect, stderr: collect }).pipe(
            Effect.timeoutOrElse({
              duration: h.timeout ?? Duration.minutes(1),
              orElse: () =>
                Effect.sync(() => {
                  output += `\n(timed out after ${Duration.format(h.timeout ?? Duration.minutes(1))})`
                  return null
                })
            })
          )
          if (code !== 0) return yield* failed(code)
        })

    const downUnlocked = Effect.fn("Stages.down")(function* () {
      const current = yield* StageState.read(stateDir)
      if (Option.isNone(current)) return Option.none<string>()
      const { name, hostRestore, source } = current.value
      const containers = yield* containersOf(name)
      const byNode = new Map(containers.map((c) => [c.Labels[Plan.label.node] ?? "", c.Id]))
      // The definition may have changed or gone since `up`: down hooks are best effort, removal is not.
      const loaded = yield* Effect.option(Catalog.loadFile(source))
      if (Option.isSome(loaded)) {
        yield* Effect.forEach(
          loaded.value.stage.hooks?.down ?? [],
          (h) => hook("down", (node) => byNode.get(node))(h).pipe(Effect.catch((e) => Effect.logWarning(e.message))),
          { discard: true }
        )
      }
      // Once hooks are done, teardown runs to its end even when interrupted: half a stage is worse than a late one.
      yield* Effect.uninterruptible(
        Effect.gen(function* () {
          yield* HostSettings.restore(hostRestore)
          yield* removeLabelled({ [Plan.label.namespace]: namespace, [Plan.label.stage]: name })
          yield* StageState.clear(stateDir)
        })
      )
      yield* emit("stage.down", name, { runId: current.value.runId })
      return Option.some(name)
    })

    const down = () => locked("down", downUnlocked())

    /** Labels that let any later process tell whether this run's owner is gone and whether anything keeps it. */
    const ownership = Effect.map(Owner.of(), (owner) => ({
      [Plan.label.owner]: Owner.format(owner),
      ...(options.ephemeral ? { [Plan.label.lifetime]: "process" } : { [Plan.label.state]: stateDir })
    })).pipe(Effect.provideService(FileSystem.FileSystem, fs))

    const up = Effect.fn("Stages.up")(function* (loaded: Loaded, upOptions: UpOptions = {}) {
      const { stage } = loaded
      yield* docker.ping
      yield* downUnlocked()
      // Leftovers of an `up` that was killed before it could clean up (nothing of this project is recorded now),
      // and of dead processes of any project (a SIGKILLed `testbed run`), never anything of a live one.
      yield* removeLabelled({ [Plan.label.namespace]: namespace })
      yield* removeOrphans.pipe(Effect.catch((e) => Effect.logWarning(`removing leftovers of dead runs: ${e.message}`)))
      const runId = randomUUID()
      const plan = Plan.make(loaded, namespace, runId, path, { home: homedir(), ownership: yield* ownership })
      const restores = yield* Ref.make<ReadonlyArray<StageState.Restore>>([])
      const startedAt = new Date(yield* Clock.currentTimeMillis).toISOString()
      yield* emit("stage.up_started", stage.name, { runId, nodes: plan.nodes.length, networks: plan.networks.length })

      const body = Effect.gen(function* () {
        // Host settings would change this machine while the stage's bridges live on the engine's machine.
        if (stage.host && !docker.local) {
          return yield* new HostSettingFailed({ setting: "host", reason: `the engine is remote (${docker.host})` })
        }
        yield* Images.ensure(loaded, upOptions.rebuild ?? false)
        for (const dir of plan.mountSources) {
          yield* fs
            .makeDirectory(dir, { recursive: true })
            .pipe(Effect.mapError((e) => new StateFileFailed({ path: dir, reason: `bind mount source: ${e.message}` })))
        }
        yield* Effect.forEach(plan.networks, (n) => docker.createNetwork(n.spec), { concurrency, discard: true })
        const ids = new Map<string, string>()
        yield* Effect.forEach(
          plan.nodes,
          (n) =>
            Effect.gen(function* () {
              const id = yield* docker.createContainer(n.spec)
              ids.set(n.name, id)
              for (const extra of n.extra) yield* docker.connectNetwork(extra.network, id, extra.address)
              yield* docker.startContainer(id)
              yield* emit("stage.node_started", stage.name, { node: n.name, container: n.spec.name })
            }),
          { concurrency, discard: true }
        )
        const running = yield* containersOf(stage.name)
        const firstAddress = (id: string) =>
          Object.values(running.find((c) => c.Id === id)?.NetworkSettings.Networks ?? {}).find(
            (n) => n.IPAddress !== ""
          )?.IPAddress
        yield* Effect.forEach(
          plan.nodes,
          (n) => {
            const id = ids.get(n.name) ?? ""
            return waitReady(docker, n.name, id, firstAddress(id), n.node.ready ?? [])
          },
          { concurrency: "unbounded", discard: true }
        )
        if (stage.host) yield* Ref.set(restores, yield* HostSettings.apply(stage.host, plan.bridgeOf))
        yield* Effect.forEach(
          stage.hooks?.up ?? [],
          hook("up", (node) => ids.get(node)),
          { discard: true }
        )
        yield* StageState.write(stateDir, {
          name: stage.name,
          runId,
          namespace,
          source: loaded.source,
          startedAt,
          hostRestore: yield* Ref.get(restores)
        })
        yield* emit("stage.up", stage.name, { runId })
      })

      yield* body.pipe(
        Effect.onExit((exit) =>
          Exit.isSuccess(exit)
            ? Effect.void
            : Effect.gen(function* () {
                const restored = yield* Ref.get(restores)
                yield* HostSettings.restore(restored)
                const removed = yield* removeLabelled({ [Plan.label.run]: runId }).pipe(
                  Effect.retry({ times: 3 }),
                  Effect.catch((e) =>
                    Effect.as(
                      Effect.logError(`cleanup of run ${runId} failed: ${e.message}; run \`testbed stage prune\``),
                      { containers: 0, networks: 0 }
                    )
                  )
                )
                const reason = Exit.hasInterrupts(exit) ? "interrupted" : "failed"
                yield* emit("stage.up_failed", stage.name, { runId, reason })
                if (upOptions.onUndone) {
                  yield* upOptions.onUndone({ reason, ...removed, hostSettings: restored.length })
                }
              })
        )
      )
      return { name: stage.name, runId, nodes: plan.nodes.map((n) => ({ node: n.name, container: n.spec.name })) }
    })

    const status = Effect.fn("Stages.status")(function* () {
      const current = Option.getOrNull(yield* StageState.read(stateDir))
      if (current === null) return { current, nodes: [] } satisfies Status
      const containers = yield* containersOf(current.name)
      const networks = yield* docker.listNetworks({
        [Plan.label.namespace]: namespace,
        [Plan.label.stage]: current.name
      })
      const netName = new Map(networks.map((n) => [n.Name, n.Labels?.[Plan.label.network] ?? n.Name]))
      const nodes = containers
        .map(
          (c): NodeStatus => ({
            node: c.Labels[Plan.label.node] ?? "?",
            container: (c.Names[0] ?? c.Id).replace(/^\//, ""),
            id: c.Id,
            state: c.State,
            status: c.Status,
            health: healthOf(c.Status),
            addresses: Object.fromEntries(
              Object.entries(c.NetworkSettings.Networks).map(([name, n]) => [netName.get(name) ?? name, n.IPAddress])
            )
          })
        )
        .sort((a, b) => a.node.localeCompare(b.node))
      return { current, nodes } satisfies Status
    })

    /** The container of a node of the current stage. */
    const containerOf = Effect.fn("Stages.containerOf")(function* (node: string) {
      const current = yield* StageState.read(stateDir)
      if (Option.isNone(current)) return yield* new NoStageUp()
      const containers = yield* containersOf(current.value.name)
      const found = containers.find((c) => c.Labels[Plan.label.node] === node && c.State === "running")
      if (!found) {
        return yield* new NodeNotFound({
          stage: current.value.name,
          node,
          nodes: containers.map((c) => c.Labels[Plan.label.node] ?? "?").sort()
        })
      }
      return found.Id
    })

    /**
     * This project's containers and networks that the recorded stage does not own, and the orphans (dead owner,
     * nothing keeps them) of every project. `all` also takes resources of any project made by testbed versions
     * that did not label their owner; resources of a live process are kept either way.
     */
    const prune = Effect.fn("Stages.prune")(function* (pruneOptions: { readonly all?: boolean } = {}) {
      const current = Option.getOrNull(yield* StageState.read(stateDir))
      const keep = (labels: Readonly<Record<string, string>>) =>
        current !== null && labels[Plan.label.run] === current.runId
          ? Effect.succeed(true)
          : Cleanup.ownerAlive(labels).pipe(Effect.provideService(FileSystem.FileSystem, fs))
      const own = yield* removeLabelled({ [Plan.label.namespace]: namespace }, keep)
      const orphans = yield* removeOrphans
      const unowned = pruneOptions.all
        ? yield* removeLabelled({ [Plan.label.stage]: "" }, (labels) =>
            Effect.succeed(labels[Plan.label.owner] !== undefined)
          )
        : { containers: 0, networks: 0 }
      return {
        containers: own.containers + orphans.containers + unowned.containers,
        networks: own.networks + orphans.networks + unowned.networks
      }
    })

    return {
      namespace,
      stateDir,
      catalog,
      list: provide(Catalog.list(catalog)),
      load: (ref: string) => provide(Catalog.load(ref, catalog)),
      up: (loaded: Loaded, upOptions?: UpOptions) => provide(locked("up", up(loaded, upOptions))),
      down: () => provide(down()),
      status: () => provide(status()),
      containerOf: (node: string) => provide(containerOf(node)),
      prune: (pruneOptions?: { readonly all?: boolean }) => provide(locked("prune", prune(pruneOptions))),
      /** A CommandRunner whose commands run in the node's container (see DockerExecRunner). */
      runner: (node: string) =>
        provide(
          Effect.flatMap(containerOf(node), (id) =>
            DockerExecRunner.make(id).pipe(Effect.provideService(EventBus.EventBus, bus))
          )
        ),
      /**
       * A shell in the node. With a terminal as input: interactive, with a TTY. Otherwise (a pipe, a file,
       * /dev/null): the shell reads its commands from the input, without a TTY, and its output is passed through.
       */
      connect: (node: string, io: InteractiveIo) =>
        provide(
          Effect.flatMap(containerOf(node), (id) =>
            io.input.isTTY === true ? docker.interactive(id, shellCommand, io) : docker.piped(id, shellCommand, io)
          )
        )
    }
  })

export class Stages extends Context.Service<Stages, Effect.Success<ReturnType<typeof make>>>()(
  "@testbed/stages/Stages"
) {
  /** `CommandRunner` for a node of the current stage: experiments run their commands there the same way. */
  static readonly runnerLayerFor = (
    node: string
  ): Layer.Layer<CommandRunner.CommandRunner, StageError.StageError, Stages> =>
    Layer.effect(
      CommandRunner.CommandRunner,
      Effect.gen(function* () {
        const stages = yield* Stages
        return yield* stages.runner(node)
      })
    )

  static readonly layer = (
    options: StagesOptions
  ): Layer.Layer<
    Stages,
    never,
    Docker | FileSystem.FileSystem | Path.Path | EventBus.EventBus | ChildProcessSpawner.ChildProcessSpawner
  > => Layer.effect(Stages, make(options))
}

export type { EngineError }
