// Bringing the recorded stage down: its down hooks (best effort: the definition may have changed or gone), then,
// uninterruptibly, host settings restored, containers and networks removed, the record cleared.
import { Effect, Option } from "effect"
import * as Catalog from "../Catalog.ts"
import { Docker } from "../Docker.ts"
import * as HostSettings from "../HostSettings.ts"
import * as StageState from "../StageState.ts"
import { removeLabelled } from "./cleanup.ts"
import { emit } from "./emit.ts"
import * as Hooks from "./hooks.ts"
import { label } from "./plan.ts"
import { handOver } from "./handOver.ts"
import { ownInstance, type Project } from "./project.ts"

/** The containers of one stage of the project, running or not. */
export const containersOf = Effect.fn("Stages.containersOf")(function* (project: Project, stage: string) {
  const docker = yield* Docker
  const all = yield* docker.listContainers({ [label.namespace]: project.namespace, [label.stage]: stage })
  return all.filter((c) => ownInstance(project, c.Labels))
})

/** Down hooks of the stage as it is defined now; each failure is logged, none stops the teardown. */
const downHooks = Effect.fn("Stages.downHooks")(function* (project: Project, current: StageState.Current) {
  const loaded = yield* Effect.option(Catalog.loadFile(current.source))
  if (Option.isNone(loaded)) return
  const containers = yield* containersOf(project, current.name)
  const byNode = new Map(containers.map((c) => [c.Labels[label.node] ?? "", c.Id]))
  yield* Effect.forEach(
    loaded.value.stage.hooks?.down ?? [],
    (hook) =>
      Hooks.run("down", (node) => byNode.get(node), hook).pipe(Effect.catch((e) => Effect.logWarning(e.message))),
    { discard: true }
  )
})

/** What goes whatever happens once hooks are done: half a stage is worse than a late one. */
const teardown = Effect.fn("Stages.teardown")(function* (project: Project, current: StageState.Current) {
  const docker = yield* Docker
  yield* HostSettings.restore(yield* handOver(project, current))
  yield* removeLabelled(
    docker,
    project.concurrency,
    { [label.namespace]: project.namespace, [label.stage]: current.name },
    (labels) => Effect.succeed(!ownInstance(project, labels))
  )
  yield* StageState.clear(project.recordDir)
})

/** Brings the recorded stage down; `None` when none was up. The caller holds the project's lock. */
export const down = Effect.fn("Stages.down")(function* (project: Project) {
  const current = yield* StageState.read(project.recordDir)
  if (Option.isNone(current)) return Option.none<string>()
  yield* downHooks(project, current.value)
  yield* Effect.uninterruptible(teardown(project, current.value))
  yield* emit("down", current.value.name, { runId: current.value.runId })
  return Option.some(current.value.name)
})
