// `prune`: this project's containers and networks that the recorded stage does not own, and the orphans (dead
// owner, nothing keeps them) of every project; `all` also takes resources of any project made by testbed versions
// that did not label their owner. Resources of a live process are kept either way.
import { Effect } from "effect"
import { Docker } from "../Docker.ts"
import { ownerAlive, removeLabelled, removeOrphans } from "./cleanup.ts"
import { records } from "./instance.ts"
import { label } from "./plan.ts"
import type { Project } from "./project.ts"

export interface PruneOptions {
  readonly all?: boolean
}

export const prune = Effect.fn("Stages.prune")(function* (project: Project, options: PruneOptions = {}) {
  const docker = yield* Docker
  // Every instance's record keeps its run.
  const recorded = new Set((yield* records(project.stateDir)).map((r) => r.current.runId))
  const keep = (labels: Readonly<Record<string, string>>) =>
    recorded.has(labels[label.run] ?? "") ? Effect.succeed(true) : ownerAlive(labels)
  const own = yield* removeLabelled(docker, project.concurrency, { [label.namespace]: project.namespace }, keep)
  const orphans = yield* removeOrphans(docker, project.concurrency)
  const unowned = options.all
    ? yield* removeLabelled(docker, project.concurrency, { [label.stage]: "" }, (labels) =>
        Effect.succeed(labels[label.owner] !== undefined)
      )
    : { containers: 0, networks: 0 }
  return {
    containers: own.containers + orphans.containers + unowned.containers,
    networks: own.networks + orphans.networks + unowned.networks
  }
})
