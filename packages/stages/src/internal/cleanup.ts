// Removing what stages left on the engine. Everything testbed creates carries its owner (the process that made it,
// see owner.ts), the state directory that records it, and its lifetime; a run is an orphan when its owner is dead
// and nothing keeps it: an ephemeral run (the docker environment of experiments) dies with its owner, a stage
// brought up by `testbed stage up` lives on while its project's record names it. Nothing of a live process and
// nothing of another host is ever removed, so processes sharing one engine never remove each other's stages.
import { Effect, type FileSystem, Option, type Path } from "effect"
import type { Docker } from "../Docker.ts"
import * as StageState from "../StageState.ts"
import { ProcessOwner as Owner } from "@testbed/commands"
import { label } from "./plan.ts"

type Labels = Readonly<Record<string, string>>

export interface Removed {
  readonly containers: number
  readonly networks: number
}

/** Removes containers, then networks, carrying all the given labels, except those `keep` holds on to. */
export const removeLabelled = Effect.fn("Cleanup.removeLabelled")(function* (
  docker: Docker["Service"],
  concurrency: number,
  labels: Labels,
  keep: (l: Labels) => Effect.Effect<boolean, never, FileSystem.FileSystem | Path.Path> = () => Effect.succeed(false)
) {
  const containers = yield* Effect.filter(yield* docker.listContainers(labels), (c) =>
    Effect.map(keep(c.Labels), (k) => !k)
  )
  yield* Effect.forEach(containers, (c) => docker.removeContainer(c.Id), { concurrency, discard: true })
  const networks = yield* Effect.filter(yield* docker.listNetworks(labels), (n) =>
    Effect.map(keep(n.Labels ?? {}), (k) => !k)
  )
  yield* Effect.forEach(networks, (n) => docker.removeNetwork(n.Id), { concurrency, discard: true })
  return { containers: containers.length, networks: networks.length } satisfies Removed
})

/** Whether a process that can be checked from here still owns these resources (or they have no owner label). */
export const ownerAlive = (labels: Labels) => {
  const owner = labels[label.owner] === undefined ? undefined : Owner.parse(labels[label.owner] as string)
  return owner === undefined ? Effect.succeed(false) : Effect.map(Owner.liveness(owner), (l) => l !== "dead")
}

/** Whether the run these labels belong to is the one its project's record keeps. */
const recorded = (labels: Labels) => {
  const stateDir = labels[label.state]
  if (stateDir === undefined) return Effect.succeed(false)
  return StageState.read(stateDir).pipe(
    Effect.map((current) => Option.isSome(current) && current.value.runId === labels[label.run]),
    // An unreadable record might still name it: keep the run rather than guess.
    Effect.orElseSucceed(() => true)
  )
}

/** A run whose owner is dead and that nothing keeps; resources without an owner label are never orphans here. */
export const isOrphan = Effect.fn("Cleanup.isOrphan")(function* (labels: Labels) {
  const text = labels[label.owner]
  const owner = text === undefined ? undefined : Owner.parse(text)
  if (owner === undefined || (yield* Owner.liveness(owner)) !== "dead") return false
  if (labels[label.lifetime] === "process") return true
  return !(yield* recorded(labels))
})

/**
 * Removes the orphans of every project on the engine. Runs are judged once each (all their resources share the
 * labels that matter), so a large engine costs two list calls and one check per run.
 */
export const removeOrphans = Effect.fn("Cleanup.removeOrphans")(function* (
  docker: Docker["Service"],
  concurrency: number
) {
  const verdicts = new Map<string, boolean>()
  const orphan = Effect.fn("Cleanup.orphan")(function* (labels: Labels) {
    const run = labels[label.run] ?? ""
    const known = verdicts.get(run)
    if (known !== undefined) return known
    const verdict = yield* isOrphan(labels)
    verdicts.set(run, verdict)
    return verdict
  })
  return yield* removeLabelled(docker, concurrency, { [label.owner]: "" }, (labels) =>
    Effect.map(orphan(labels), (o) => !o)
  )
})
