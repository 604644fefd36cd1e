// Links made when a stage comes up: each veth pair is created inside the first node's namespace with its peer
// placed straight into the second's (`ip link add … peer name … netns PID`), so no end is ever on the host and
// both go when either node goes.
import { Effect } from "effect"
import { Docker } from "../Docker.ts"
import type { End, Link } from "../Link.ts"
import { NamespaceUnavailable } from "../StageError.ts"
import { type Namespace, runOk } from "./netns.ts"

/** The namespace of a running container: its first process's pid, on this machine. */
export const namespaceOf = Effect.fn("Links.namespaceOf")(function* (node: string, container: string) {
  const docker = yield* Docker
  if (!docker.local) {
    return yield* new NamespaceUnavailable({ node, reason: `the engine is remote (${docker.host})` })
  }
  const state = yield* docker.health(container)
  const pid = state.State.Pid ?? 0
  if (!state.State.Running || pid <= 0) return yield* new NamespaceUnavailable({ node, reason: "it does not run" })
  return { node, pid } satisfies Namespace
})

const configure = Effect.fn("Links.configure")(function* (ns: Namespace, end: End) {
  if (end.address !== undefined) yield* runOk(ns, ["ip", "addr", "add", end.address, "dev", end.interface])
  yield* runOk(ns, ["ip", "link", "set", "dev", end.interface, "up"])
})

/** One link between two nodes whose namespaces are known. */
export const create = Effect.fn("Links.create")(function* (link: Link, a: Namespace, b: Namespace) {
  const mtu = link.mtu === undefined ? [] : ["mtu", String(link.mtu)]
  yield* runOk(a, [
    "ip",
    "link",
    "add",
    link.a.interface,
    ...mtu,
    "type",
    "veth",
    "peer",
    "name",
    link.b.interface,
    ...mtu,
    "netns",
    String(b.pid)
  ])
  yield* configure(a, link.a)
  yield* configure(b, link.b)
})
