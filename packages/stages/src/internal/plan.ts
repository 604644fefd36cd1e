// What a stage becomes in the engine: names, labels, bridge interface names and container specs.
import { createHash } from "node:crypto"
import { Duration, type Path } from "effect"
import type { ContainerSpec, NetworkSpec } from "../Docker.ts"
import type { Loaded, Node } from "../Stage.ts"
import { bridgeNameOption } from "./checks.ts"
import { mountSource } from "./mountSource.ts"

export const label = {
  namespace: "testbed.namespace",
  stage: "testbed.stage",
  run: "testbed.run",
  node: "testbed.node",
  network: "testbed.network",
  /** The process that made it: `host/boot/pid/start` (see owner.ts). */
  owner: "testbed.owner",
  /** The state directory whose record keeps the run (absent for ephemeral runs). */
  state: "testbed.state",
  /** `process`: the run dies with its owner, recorded or not. */
  lifetime: "testbed.lifetime",
  /** The instance (`--instance NAME`) a resource belongs to; absent for the project's one stage. */
  instance: "testbed.instance"
} as const

export interface Plan {
  readonly runId: string
  readonly labels: Readonly<Record<string, string>>
  readonly networks: ReadonlyArray<{ readonly name: string; readonly spec: NetworkSpec }>
  readonly nodes: ReadonlyArray<{
    readonly name: string
    readonly node: Node
    readonly spec: ContainerSpec
    /** Networks after the first, attached before the container starts. */
    readonly extra: ReadonlyArray<{ readonly network: string; readonly address?: string | undefined }>
  }>
  /** Host-side directories of bind mounts, created before containers so the engine does not create them as root. */
  readonly mountSources: ReadonlyArray<string>
  readonly bridgeOf: (network: string) => string
}

/** Tag of a node's image: the one it names, or one derived from stage and node when it only has a build. */
export const imageOf = (stage: string, name: string, node: Node): string =>
  node.image ?? `testbed/${stage}-${name}:latest`

const short = (runId: string) => runId.replaceAll("-", "").slice(0, 8)

const nanos = (ms: number) => Math.round(ms * 1_000_000)
const toMs = (d: Duration.Duration) => Duration.toMillis(d)

export interface PlanOptions {
  readonly home: string
  readonly instance?: string | undefined
  /** Owner, state and lifetime labels (see cleanup.ts). */
  readonly ownership?: Readonly<Record<string, string>>
}

/** What every name of one run is derived from. */
interface Naming {
  readonly loaded: Loaded
  readonly labels: Readonly<Record<string, string>>
  /** Container and network names start with it: the stage's name, and its instance's. */
  readonly prefix: string
  readonly networkName: (network: string) => string
  readonly bridgeOf: (network: string) => string
}

const naming = (loaded: Loaded, namespace: string, runId: string, options: PlanOptions): Naming => {
  const { stage } = loaded
  const labels = {
    ...options.ownership,
    [label.namespace]: namespace,
    [label.stage]: stage.name,
    [label.run]: runId,
    ...(options.instance === undefined ? {} : { [label.instance]: options.instance })
  }
  const prefix = options.instance === undefined ? stage.name : `${stage.name}-${options.instance}`
  return {
    loaded,
    labels,
    prefix,
    networkName: (net) => `${prefix}-${net}-${short(runId)}`,
    // At most 15 characters (IFNAMSIZ); unique per run so a stale bridge never collides.
    bridgeOf: (net) =>
      stage.networks?.[net]?.driverOptions?.[bridgeNameOption] ??
      `tb${createHash("sha256").update(`${namespace}/${stage.name}/${net}/${runId}`).digest("hex").slice(0, 11)}`
  }
}

const networkPlans = (n: Naming): Plan["networks"] =>
  Object.entries(n.loaded.stage.networks ?? {}).map(([name, network]) => ({
    name,
    spec: {
      name: n.networkName(name),
      subnet: network.subnet,
      gateway: network.gateway,
      internal: network.internal,
      bridgeName: n.bridgeOf(name),
      options: network.driverOptions ?? {},
      labels: { ...n.labels, [label.network]: name }
    } satisfies NetworkSpec
  }))

const healthcheckOf = (node: Node): ContainerSpec["healthcheck"] => {
  const hc = node.healthcheck
  if (hc === undefined) return undefined
  return {
    test: hc.test,
    ...(hc.interval ? { intervalNs: nanos(toMs(hc.interval)) } : {}),
    ...(hc.timeout ? { timeoutNs: nanos(toMs(hc.timeout)) } : {}),
    ...(hc.retries !== undefined ? { retries: hc.retries } : {})
  }
}

const nodePlan = (n: Naming, name: string, node: Node, binds: ReadonlyArray<string>, runId: string) => {
  const [first, ...extra] = node.networks ?? []
  const spec: ContainerSpec = {
    name: `${n.prefix}-${name}-${short(runId)}`,
    image: imageOf(n.loaded.stage.name, name, node),
    labels: { ...n.labels, [label.node]: name },
    env: Object.entries(node.env ?? {}).map(([k, v]) => `${k}=${v}`),
    cmd: node.command,
    workingDir: node.workingDir,
    hostname: node.hostname ?? name,
    tty: node.tty,
    capAdd: node.capabilities,
    sysctls: node.sysctls,
    binds,
    healthcheck: healthcheckOf(node),
    network: first ? { name: n.networkName(first.network), address: first.address } : undefined
  }
  return { name, node, spec, extra: extra.map((a) => ({ network: n.networkName(a.network), address: a.address })) }
}

export const make = (loaded: Loaded, namespace: string, runId: string, path: Path.Path, options: PlanOptions): Plan => {
  const n = naming(loaded, namespace, runId, options)
  const mountSources: Array<string> = []
  const nodes = Object.entries(loaded.stage.nodes).map(([name, node]) => {
    const binds = (node.mounts ?? []).map((mount) => {
      const source = mountSource(path, loaded.baseDir, mount.source, options.home)
      mountSources.push(source)
      return `${source}:${mount.target}${mount.readOnly ? ":ro" : ""}`
    })
    return nodePlan(n, name, node, binds, runId)
  })
  return { runId, labels: n.labels, networks: networkPlans(n), nodes, mountSources, bridgeOf: n.bridgeOf }
}
