// Bringing a stage up, step by step: leftovers of earlier runs removed, images made, networks and containers
// created and started, readiness awaited, host settings applied, up hooks run, the stage recorded. Any failure or
// interrupt undoes everything this run created (by its run label) and puts host settings back.
import { randomUUID } from "node:crypto"
import { homedir } from "node:os"
import { Clock, Deferred, Effect, Exit, FileSystem, Path, Ref } from "effect"
import { Docker } from "../Docker.ts"
import * as HostSettings from "../HostSettings.ts"
import type { Loaded } from "../Stage.ts"
import { HostSettingFailed, StateFileFailed } from "../StageError.ts"
import * as StageState from "../StageState.ts"
import { removeLabelled, removeOrphans } from "./cleanup.ts"
import { containersOf, down } from "./down.ts"
import { emit } from "./emit.ts"
import * as Hooks from "./hooks.ts"
import * as Images from "./images.ts"
import * as Lab from "./lab.ts"
import { ProcessOwner as Owner } from "@testbed/commands"
import * as Plan from "./plan.ts"
import { freeSlot, localize, records } from "./instance.ts"
import { ownInstance, type Project } from "./project.ts"
import { waitReady } from "./readiness.ts"

/** What a failed or interrupted `up` removed and put back before it ended. */
export interface Undone {
  readonly reason: "failed" | "interrupted"
  readonly containers: number
  readonly networks: number
  readonly hostSettings: number
}

export interface UpOptions {
  /** Build images from their context even when present. */
  readonly rebuild?: boolean
  /** Told what was undone when `up` fails or is interrupted (the CLI prints it). */
  readonly onUndone?: (undone: Undone) => Effect.Effect<void>
}

export interface UpResult {
  readonly name: string
  readonly runId: string
  readonly nodes: ReadonlyArray<{ readonly node: string; readonly container: string }>
}

/**
 * Before anything is created: the stage that is up goes down, leftovers of an `up` of this project that was killed
 * before it could clean up go, and so do the orphans of dead processes of any project (never a live one's).
 */
const clearTheWay = Effect.fn("Stages.clearTheWay")(function* (project: Project) {
  const docker = yield* Docker
  yield* docker.ping
  yield* down(project)
  yield* removeLabelled(docker, project.concurrency, { [Plan.label.namespace]: project.namespace }, (labels) =>
    Effect.succeed(!ownInstance(project, labels))
  )
  yield* removeOrphans(docker, project.concurrency).pipe(
    Effect.catch((e) => Effect.logWarning(`removing leftovers of dead runs: ${e.message}`))
  )
})

/** The first block of the pool that no other instance of the same stage in this project holds. */
const slotFor = Effect.fn("Stages.slotFor")(function* (project: Project, stage: string) {
  if (project.instance === undefined) return 0
  const others = (yield* records(project.stateDir)).filter(
    (r) => r.dir !== project.recordDir && r.current.name === stage && r.current.slot !== undefined
  )
  return freeSlot(new Set(others.map((r) => r.current.slot ?? 0)))
})

/** Labels that let any later process tell whether this run's owner is gone and whether anything keeps it. */
const ownership = Effect.fn("Stages.ownership")(function* (project: Project) {
  const owner = yield* Owner.of()
  return {
    [Plan.label.owner]: Owner.format(owner),
    ...(project.ephemeral ? { [Plan.label.lifetime]: "process" } : { [Plan.label.state]: project.recordDir })
  }
})

/** Host-side directories of bind mounts, made before the engine would make them as root. */
const makeMountSources = Effect.fn("Stages.makeMountSources")(function* (plan: Plan.Plan) {
  const fs = yield* FileSystem.FileSystem
  for (const dir of plan.mountSources) {
    yield* fs
      .makeDirectory(dir, { recursive: true })
      .pipe(Effect.mapError((e) => new StateFileFailed({ path: dir, reason: `bind mount source: ${e.message}` })))
  }
})

/** One container created (its id told to `created` at once, for the undo) once its networks exist. */
const createNode = Effect.fn("Stages.createNode")(function* (
  node: Plan.Plan["nodes"][number],
  networks: ReadonlyMap<string, Deferred.Deferred<void>>,
  created: (id: string) => void
) {
  const docker = yield* Docker
  const ready = (name: string) => {
    const network = networks.get(name)
    return network === undefined ? Effect.void : Deferred.await(network)
  }
  if (node.spec.network) yield* ready(node.spec.network.name)
  const id = yield* docker.createContainer(node.spec)
  created(id)
  for (const extra of node.extra) {
    yield* ready(extra.network)
    yield* docker.connectNetwork(extra.network, id, extra.address)
  }
  return id
})

/**
 * Networks and containers at once: each container is created as soon as its own first network exists (not all of
 * them), connected to its others as they come, and started, so the engine overlaps network and container work.
 * A network that cannot be made fails the whole at once (the waiting containers are interrupted).
 */
const createAll = Effect.fn("Stages.createAll")(function* (project: Project, plan: Plan.Plan, stage: string) {
  const docker = yield* Docker
  const concurrency = project.concurrency
  const networks = new Map<string, Deferred.Deferred<void>>()
  for (const n of plan.networks) networks.set(n.spec.name, yield* Deferred.make<void>())
  const makeNetworks = Effect.forEach(
    plan.networks,
    (n) => Effect.andThen(docker.createNetwork(n.spec), Deferred.succeed(networks.get(n.spec.name)!, undefined)),
    { concurrency, discard: true }
  )
  const ids = new Map<string, string>()
  const makeNodes = Effect.forEach(
    plan.nodes,
    (n) =>
      Effect.flatMap(
        createNode(n, networks, (id) => ids.set(n.name, id)),
        (id) =>
          Effect.andThen(
            docker.startContainer(id),
            emit("node_started", stage, { node: n.name, container: n.spec.name })
          )
      ),
    { concurrency, discard: true }
  )
  yield* Effect.all([makeNetworks, makeNodes], { concurrency: 2, discard: true })
  return ids as ReadonlyMap<string, string>
})

/** Every node's readiness conditions, all nodes at once; a `tcp` probe goes to the node's first address. */
const awaitReadiness = Effect.fn("Stages.awaitReadiness")(function* (
  project: Project,
  plan: Plan.Plan,
  stage: string,
  ids: ReadonlyMap<string, string>
) {
  const docker = yield* Docker
  const running = yield* containersOf(project, stage)
  const firstAddress = (id: string) =>
    Object.values(running.find((c) => c.Id === id)?.NetworkSettings.Networks ?? {}).find((n) => n.IPAddress !== "")
      ?.IPAddress
  yield* Effect.forEach(
    plan.nodes,
    (n) => {
      const id = ids.get(n.name) ?? ""
      return waitReady(docker, n.name, id, firstAddress(id), n.node.ready ?? [])
    },
    { concurrency: "unbounded", discard: true }
  )
})

interface Run {
  readonly project: Project
  readonly loaded: Loaded
  readonly plan: Plan.Plan
  readonly startedAt: string
  /** Host settings applied so far, for the undo. */
  readonly restores: Ref.Ref<ReadonlyArray<StageState.Restore>>
  /** The instance's block of the pool. */
  readonly slot: number
}

/** Everything `up` creates, in order; the caller undoes it when this fails or is interrupted. */
const build = Effect.fn("Stages.build")(function* (run: Run, options: UpOptions) {
  const docker = yield* Docker
  const { stage } = run.loaded
  // Host settings would change this machine while the stage's bridges live on the engine's machine.
  if (stage.host && !docker.local) {
    return yield* new HostSettingFailed({ setting: "host", reason: `the engine is remote (${docker.host})` })
  }
  yield* Images.ensure(run.loaded, options.rebuild ?? false)
  yield* makeMountSources(run.plan)
  const ids = yield* createAll(run.project, run.plan, stage.name)
  const impairments = yield* Lab.setUp(run.project, run.loaded)
  yield* awaitReadiness(run.project, run.plan, stage.name, ids)
  if (stage.host) yield* Ref.set(run.restores, yield* HostSettings.apply(stage.host, run.plan.bridgeOf))
  for (const hook of stage.hooks?.up ?? []) yield* Hooks.run("up", (node) => ids.get(node), hook)
  yield* StageState.write(run.project.recordDir, {
    name: stage.name,
    runId: run.plan.runId,
    namespace: run.project.namespace,
    source: run.loaded.source,
    startedAt: run.startedAt,
    hostRestore: yield* Ref.get(run.restores),
    ...(Object.keys(impairments).length === 0 ? {} : { impairments }),
    ...(run.project.instance === undefined ? {} : { instance: run.project.instance, slot: run.slot })
  })
  yield* emit("up", stage.name, { runId: run.plan.runId })
})

/** After a failed or interrupted build: host settings back, everything labelled with the run removed. */
const undo = Effect.fn("Stages.undo")(function* (run: Run, exit: Exit.Exit<unknown, unknown>, options: UpOptions) {
  const docker = yield* Docker
  const runId = run.plan.runId
  const restored = yield* Ref.get(run.restores)
  yield* HostSettings.restore(restored)
  const removed = yield* removeLabelled(docker, run.project.concurrency, { [Plan.label.run]: runId }).pipe(
    Effect.retry({ times: 3 }),
    Effect.catch((e) =>
      Effect.as(Effect.logError(`cleanup of run ${runId} failed: ${e.message}; run \`testbed stage prune\``), {
        containers: 0,
        networks: 0
      })
    )
  )
  const reason = Exit.hasInterrupts(exit) ? "interrupted" : "failed"
  yield* emit("up_failed", run.loaded.stage.name, { runId, reason })
  if (options.onUndone) yield* options.onUndone({ reason, ...removed, hostSettings: restored.length })
})

/** Brings `loaded` up as defined, or leaves nothing of it; the caller holds the project's lock. */
export const up = Effect.fn("Stages.up")(function* (project: Project, given: Loaded, options: UpOptions = {}) {
  const path = yield* Path.Path
  yield* clearTheWay(project)
  const slot = yield* slotFor(project, given.stage.name)
  const loaded = project.instance === undefined ? given : yield* localize(given, project.instance, slot)
  const runId = randomUUID()
  const plan = Plan.make(loaded, project.namespace, runId, path, {
    home: homedir(),
    instance: project.instance,
    ownership: yield* ownership(project)
  })
  const run: Run = {
    project,
    loaded,
    plan,
    slot,
    startedAt: new Date(yield* Clock.currentTimeMillis).toISOString(),
    restores: yield* Ref.make<ReadonlyArray<StageState.Restore>>([])
  }
  yield* emit("up_started", loaded.stage.name, { runId, nodes: plan.nodes.length, networks: plan.networks.length })
  yield* build(run, options).pipe(
    Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : undo(run, exit, options)))
  )
  return {
    name: loaded.stage.name,
    runId,
    nodes: plan.nodes.map((n) => ({ node: n.name, container: n.spec.name }))
  } satisfies UpResult
})
