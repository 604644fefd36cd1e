// What is up: the recorded stage, its nodes with state, health and addresses per network, and the container of a
// node by its name.
import { Effect, Option } from "effect"
import * as Catalog from "../Catalog.ts"
import { Docker, type ContainerSummary } from "../Docker.ts"
import * as Impairment from "../Impairment.ts"
import { endName } from "../Link.ts"
import { localize } from "./instance.ts"
import { NodeNotFound, NoStageUp } from "../StageError.ts"
import * as StageState from "../StageState.ts"
import { containersOf } from "./down.ts"
import { label } from "./plan.ts"
import type { Project } from "./project.ts"

export interface NodeStatus {
  readonly node: string
  readonly container: string
  readonly id: string
  readonly state: string
  readonly status: string
  readonly health: string | null
  readonly addresses: Readonly<Record<string, string>>
}

export interface LinkStatus {
  readonly a: string
  readonly b: string
  readonly addresses: readonly [string | null, string | null]
}

export interface Status {
  readonly current: StageState.Current | null
  readonly nodes: ReadonlyArray<NodeStatus>
  /** Point-to-point links of the stage as it was brought up (`NODE:IFACE` ends and their addresses). */
  readonly links: ReadonlyArray<LinkStatus>
  /** Impairments in force, by `NODE:IFACE`, in tc's words. */
  readonly impairments: Readonly<Record<string, string>>
}

const healthOf = (status: string): string | null => /\((healthy|unhealthy|health: starting)\)/.exec(status)?.[1] ?? null

const nodeStatus = (c: ContainerSummary, netName: ReadonlyMap<string, string>): NodeStatus => ({
  node: c.Labels[label.node] ?? "?",
  container: (c.Names[0] ?? c.Id).replace(/^\//, ""),
  id: c.Id,
  state: c.State,
  status: c.Status,
  health: healthOf(c.Status),
  addresses: Object.fromEntries(
    Object.entries(c.NetworkSettings.Networks).map(([name, n]) => [netName.get(name) ?? name, n.IPAddress])
  )
})

/** The links of the recorded stage as brought up (an instance's addresses moved); none if its file is gone. */
const linksOf = Effect.fn("Stages.linksOf")(function* (current: StageState.Current) {
  const file = yield* Effect.option(Catalog.loadFile(current.source))
  if (Option.isNone(file)) return []
  const loaded =
    current.instance === undefined
      ? file.value
      : yield* localize(file.value, current.instance, current.slot ?? 0).pipe(Effect.orElseSucceed(() => file.value))
  return (loaded.stage.links ?? []).map(
    (l): LinkStatus => ({
      a: endName(l.a),
      b: endName(l.b),
      addresses: [l.a.address ?? null, l.b.address ?? null]
    })
  )
})

const impairmentsOf = (current: StageState.Current) =>
  Object.fromEntries(Object.entries(current.impairments ?? {}).map(([t, s]) => [t, Impairment.describe(s)]))

export const status = Effect.fn("Stages.status")(function* (project: Project) {
  const docker = yield* Docker
  const current = Option.getOrNull(yield* StageState.read(project.recordDir))
  if (current === null) return { current, nodes: [], links: [], impairments: {} } satisfies Status
  const containers = yield* containersOf(project, current.name)
  const networks = yield* docker.listNetworks({ [label.namespace]: project.namespace, [label.stage]: current.name })
  const netName = new Map(networks.map((n) => [n.Name, n.Labels?.[label.network] ?? n.Name]))
  const nodes = containers.map((c) => nodeStatus(c, netName)).sort((a, b) => a.node.localeCompare(b.node))
  return { current, nodes, links: yield* linksOf(current), impairments: impairmentsOf(current) } satisfies Status
})

/** The running container of a node of the recorded stage. */
export const containerOf = Effect.fn("Stages.containerOf")(function* (project: Project, node: string) {
  const current = yield* StageState.read(project.recordDir)
  if (Option.isNone(current)) return yield* new NoStageUp()
  const containers = yield* containersOf(project, current.value.name)
  const found = containers.find((c) => c.Labels[label.node] === node && c.State === "running")
  if (!found) {
    return yield* new NodeNotFound({
      stage: current.value.name,
      node,
      nodes: containers.map((c) => c.Labels[label.node] ?? "?").sort()
    })
  }
  return found.Id
})
