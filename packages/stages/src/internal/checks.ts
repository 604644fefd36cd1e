// Checks across a decoded stage that no single field's schema can make: references between networks, nodes and
// hooks; addresses inside their subnets; bridge names the host can take. Each problem has its YAML path.
import type { Stage } from "../Stage.ts"
import { labProblems } from "./labChecks.ts"
import { contains, parseAddress, parseSubnet, type Subnet } from "./ipv4.ts"
import { isOtherUsersHome } from "./mountSource.ts"

interface Problem {
  readonly path: string
  readonly message: string
}

const bridgeName = /^[A-Za-z0-9_.-]{1,15}$/
const driverOption = /^com\.docker\.network\.[a-z0-9_.]+$/
/** The driver option that names a network's bridge interface on the host. */
export const bridgeNameOption = "com.docker.network.bridge.name"

const subnets = (stage: Stage): ReadonlyMap<string, Subnet> => {
  const out = new Map<string, Subnet>()
  for (const [name, network] of Object.entries(stage.networks ?? {})) {
    const subnet = network.subnet === undefined ? undefined : parseSubnet(network.subnet)
    if (subnet !== undefined && typeof subnet !== "string") out.set(name, subnet)
  }
  return out
}

const networkProblems = (stage: Stage): Array<Problem> => {
  const problems: Array<Problem> = []
  const bridges = new Map<string, string>()
  const inside = subnets(stage)
  for (const [name, network] of Object.entries(stage.networks ?? {})) {
    const subnet = inside.get(name)
    const gateway = network.gateway === undefined ? undefined : parseAddress(network.gateway)
    if (network.gateway !== undefined && network.subnet === undefined) {
      problems.push({ path: `networks.${name}.gateway`, message: "a gateway needs a subnet" })
    } else if (subnet !== undefined && gateway !== undefined && !contains(subnet, gateway)) {
      problems.push({ path: `networks.${name}.gateway`, message: `${network.gateway} is not in ${network.subnet}` })
    }
    for (const key of Object.keys(network.driverOptions ?? {})) {
      if (!driverOption.test(key)) {
        const message = "only the bridge driver's options (com.docker.network.…) are passed to the engine"
        problems.push({ path: `networks.${name}.driverOptions.${key}`, message })
      }
    }
    const bridge = network.driverOptions?.[bridgeNameOption]
    if (bridge === undefined) continue
    const at = `networks.${name}.driverOptions.${bridgeNameOption}`
    if (!bridgeName.test(bridge)) {
      problems.push({ path: at, message: "a bridge name is 1–15 letters, digits, '.', '_' or '-'" })
    } else if (bridges.has(bridge)) {
      problems.push({ path: at, message: `bridge ${bridge} is already the bridge of network ${bridges.get(bridge)}` })
    } else bridges.set(bridge, name)
  }
  return problems
}

const nodeProblems = (stage: Stage): Array<Problem> => {
  const problems: Array<Problem> = []
  const networks = new Set(Object.keys(stage.networks ?? {}))
  const inside = subnets(stage)
  if (Object.keys(stage.nodes).length === 0)
    problems.push({ path: "nodes", message: "a stage needs at least one node" })
  for (const [name, node] of Object.entries(stage.nodes)) {
    if (node.image === undefined && node.build === undefined) {
      problems.push({ path: `nodes.${name}`, message: "needs an image or a build context" })
    }
    for (const [i, attachment] of (node.networks ?? []).entries()) {
      const at = `nodes.${name}.networks[${i}]`
      if (!networks.has(attachment.network)) {
        problems.push({ path: `${at}.network`, message: `no network ${attachment.network} in networks` })
        continue
      }
      const subnet = inside.get(attachment.network)
      const address = attachment.address === undefined ? undefined : parseAddress(attachment.address)
      if (subnet !== undefined && address !== undefined && !contains(subnet, address)) {
        const cidr = stage.networks?.[attachment.network]?.subnet
        problems.push({ path: `${at}.address`, message: `${attachment.address} is not in ${cidr}` })
      }
    }
    for (const [i, mount] of (node.mounts ?? []).entries()) {
      if (isOtherUsersHome(mount.source)) {
        problems.push({
          path: `nodes.${name}.mounts[${i}].source`,
          message: "only ~ and ~/… are expanded (to your home)"
        })
      }
    }
    for (const [i, ready] of (node.ready ?? []).entries()) {
      if ("healthy" in ready && node.healthcheck === undefined) {
        problems.push({ path: `nodes.${name}.ready[${i}]`, message: "`healthy` needs a healthcheck on the node" })
      }
    }
  }
  return problems
}

export const crossCheck = (stage: Stage): Array<Problem> => {
  const problems = [...networkProblems(stage), ...nodeProblems(stage), ...labProblems(stage)]
  const networks = new Set(Object.keys(stage.networks ?? {}))
  const nodes = new Set(Object.keys(stage.nodes))
  for (const phase of ["up", "down"] as const) {
    for (const [i, hook] of (stage.hooks?.[phase] ?? []).entries()) {
      if (!nodes.has(hook.node)) problems.push({ path: `hooks.${phase}[${i}].node`, message: `no node ${hook.node}` })
    }
  }
  for (const [i, iface] of (stage.host?.interfaces ?? []).entries()) {
    if ((iface.network === undefined) === (iface.name === undefined)) {
      problems.push({ path: `host.interfaces[${i}]`, message: "give exactly one of network or name" })
    } else if (iface.network !== undefined && !networks.has(iface.network)) {
      problems.push({ path: `host.interfaces[${i}].network`, message: `no network ${iface.network} in networks` })
    }
  }
  return problems
}
