// What `NODE:IFACE` names in the recorded stage: an end of a link (its interface), a network the node is attached
// to (the interface holding the node's address there, found inside its namespace), or any interface of the node.
// The peer — where measurements go — is the link's other end, or the first other node on the same network.
import { Effect, Option, Schema } from "effect"
import * as Catalog from "../Catalog.ts"
import { Docker } from "../Docker.ts"
import * as Impairment from "../Impairment.ts"
import type { Loaded, Stage } from "../Stage.ts"
import { NoStageUp, NodeNotFound, TargetNotFound } from "../StageError.ts"
import * as StageState from "../StageState.ts"
import { containersOf } from "./down.ts"
import type { End } from "./impair.ts"
import { localize } from "./instance.ts"
import { namespaceOf } from "./links.ts"
import { type Namespace, run } from "./netns.ts"
import { label } from "./plan.ts"
import { ownInstance, type Project } from "./project.ts"

/** A stage as it runs: its definition as brought up (an instance's addresses moved) and its nodes. */
export interface View {
  readonly name: string
  readonly loaded: Loaded
  /** Running containers by node. */
  readonly containers: ReadonlyMap<string, string>
  /** Each node's address on each stage network. */
  readonly addresses: ReadonlyMap<string, Readonly<Record<string, string>>>
}

/** The recorded stage as it runs, with its record. */
export interface Recorded extends View {
  readonly current: StageState.Current
}

/** The stage `name` of the project as it runs now (during `up` too, before it is recorded). */
export const viewOf = Effect.fn("Targets.viewOf")(function* (project: Project, name: string, loaded: Loaded) {
  const docker = yield* Docker
  const containers = (yield* containersOf(project, name)).filter((c) => c.State === "running")
  const networks = (yield* docker.listNetworks({ [label.namespace]: project.namespace, [label.stage]: name })).filter(
    (n) => ownInstance(project, n.Labels ?? {})
  )
  const netName = new Map(networks.map((n) => [n.Name, n.Labels?.[label.network] ?? n.Name]))
  const addressesOf = (c: (typeof containers)[number]) =>
    Object.fromEntries(
      Object.entries(c.NetworkSettings.Networks).map(([n, v]) => [netName.get(n) ?? n, v.IPAddress] as const)
    )
  return {
    name,
    loaded,
    containers: new Map(containers.map((c) => [c.Labels[label.node] ?? "", c.Id])),
    addresses: new Map(containers.map((c) => [c.Labels[label.node] ?? "", addressesOf(c)]))
  } satisfies View
})

/** The recorded stage; `edit` changes its definition (other checks) before an instance's addresses are moved. */
export const recorded = Effect.fn("Targets.recorded")(function* (
  project: Project,
  edit: (stage: Stage) => Stage = (s) => s
) {
  const current = yield* StageState.read(project.recordDir)
  if (Option.isNone(current)) return yield* new NoStageUp()
  const { instance, slot, name, source } = current.value
  const read = yield* Catalog.loadFile(source)
  const file = { ...read, stage: edit(read.stage) }
  const loaded = instance === undefined ? file : yield* localize(file, instance, slot ?? 0)
  return { ...(yield* viewOf(project, name, loaded)), current: current.value } satisfies Recorded
})

/** The namespace of a node of the recorded stage. */
export const nodeNamespace = Effect.fn("Targets.nodeNamespace")(function* (rec: View, node: string) {
  const container = rec.containers.get(node)
  if (container === undefined) {
    return yield* new NodeNotFound({ stage: rec.name, node, nodes: [...rec.containers.keys()].sort() })
  }
  return yield* namespaceOf(node, container)
})

const AddressList = Schema.Array(
  Schema.Struct({
    ifname: Schema.String,
    addr_info: Schema.Array(Schema.Struct({ local: Schema.optionalKey(Schema.String) }))
  })
)
const decodeAddresses = Schema.decodeUnknownOption(Schema.fromJsonString(AddressList))

/** The interface holding `address` inside the namespace. */
const interfaceWith = Effect.fn("Targets.interfaceWith")(function* (ns: Namespace, address: string) {
  const listed = yield* run(ns, ["ip", "-j", "-4", "addr", "show"])
  const list = Option.getOrElse(decodeAddresses(listed.stdout), () => [])
  return list.find((i) => i.addr_info.some((a) => a.local === address))?.ifname
})

/** One end of an impairment or a measurement, and the peer its traffic goes to (when there is one). */
export interface Resolved {
  readonly end: End
  readonly peer?: { readonly ns: Namespace; readonly address: string; readonly name: string } | undefined
}

const linkEnd = Effect.fn("Targets.linkEnd")(function* (rec: View, node: string, iface: string) {
  const link = (rec.loaded.stage.links ?? []).find(
    (l) => (l.a.node === node && l.a.interface === iface) || (l.b.node === node && l.b.interface === iface)
  )
  if (link === undefined) return undefined
  const other = link.a.node === node && link.a.interface === iface ? link.b : link.a
  const peer =
    other.address === undefined
      ? undefined
      : {
          ns: yield* nodeNamespace(rec, other.node),
          address: other.address.split("/")[0] ?? "",
          name: `${other.node}:${other.interface}`
        }
  return peer
})

const attachment = Effect.fn("Targets.attachment")(function* (rec: View, ns: Namespace, node: string, net: string) {
  const address = rec.addresses.get(node)?.[net]
  if (address === undefined || address === "") return undefined
  const iface = yield* interfaceWith(ns, address)
  if (iface === undefined) return undefined
  const other = [...rec.addresses].find(([n, a]) => n !== node && (a[net] ?? "") !== "")
  const peer =
    other === undefined
      ? undefined
      : { ns: yield* nodeNamespace(rec, other[0]), address: other[1][net] ?? "", name: `${other[0]}:${net}` }
  return { iface, peer }
})

export const resolve = Effect.fn("Targets.resolve")(function* (rec: View, target: string) {
  const { node, iface } = Impairment.splitTarget(target)
  const ns = yield* nodeNamespace(rec, node)
  const isLink = (rec.loaded.stage.links ?? []).some(
    (l) => (l.a.node === node && l.a.interface === iface) || (l.b.node === node && l.b.interface === iface)
  )
  if (isLink) return { end: { ns, iface, target }, peer: yield* linkEnd(rec, node, iface) } satisfies Resolved
  const attached = yield* attachment(rec, ns, node, iface)
  if (attached !== undefined)
    return { end: { ns, iface: attached.iface, target }, peer: attached.peer } satisfies Resolved
  const exists = yield* run(ns, ["ip", "link", "show", "dev", iface])
  if (exists.exitCode === 0) return { end: { ns, iface, target } } satisfies Resolved
  const links = (rec.loaded.stage.links ?? []).flatMap((l) => [l.a, l.b]).filter((e) => e.node === node)
  const networks = Object.keys(rec.addresses.get(node) ?? {})
  return yield* new TargetNotFound({
    target,
    reason: `${node} has links ${links.map((e) => e.interface).join(", ") || "none"} and networks ${networks.join(", ") || "none"}`
  })
})
