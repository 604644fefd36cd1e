// Cross references of a stage's lab parts that no field's schema can check alone: links between nodes that exist,
// interface names a node can take, impairment targets, check names and the nodes and addresses checks name.
import * as Check from "../Check.ts"
import * as Impairment from "../Impairment.ts"
import type { Stage } from "../Stage.ts"
import { parseAddress, parseSubnet } from "./ipv4.ts"

interface Problem {
  readonly path: string
  readonly message: string
}

/** The engine names a node's network interfaces eth0, eth1…; `lo` is always there. */
const reserved = /^(lo|eth\d+)$/

/** Interfaces of links, per node. */
export const linkInterfaces = (stage: Stage): ReadonlyMap<string, ReadonlySet<string>> => {
  const out = new Map<string, Set<string>>()
  for (const link of stage.links ?? []) {
    for (const end of [link.a, link.b]) {
      const set = out.get(end.node) ?? new Set<string>()
      set.add(end.interface)
      out.set(end.node, set)
    }
  }
  return out
}

const linkProblems = (stage: Stage): Array<Problem> => {
  const problems: Array<Problem> = []
  const seen = new Set<string>()
  for (const [i, link] of (stage.links ?? []).entries()) {
    for (const side of ["a", "b"] as const) {
      const end = link[side]
      const at = `links[${i}].${side}`
      if (stage.nodes[end.node] === undefined) problems.push({ path: `${at}.node`, message: `no node ${end.node}` })
      if (reserved.test(end.interface)) {
        problems.push({
          path: `${at}.interface`,
          message: `${end.interface} is the engine's; name link ends otherwise`
        })
      }
      const key = `${end.node}:${end.interface}`
      if (seen.has(key)) problems.push({ path: `${at}.interface`, message: `${key} is already a link end` })
      seen.add(key)
    }
    if (link.a.node === link.b.node) problems.push({ path: `links[${i}]`, message: "a link joins two different nodes" })
  }
  return problems
}

const targetProblem = (stage: Stage, target: string, at: string): Problem | undefined => {
  const { node } = Impairment.splitTarget(target)
  return stage.nodes[node] === undefined ? { path: at, message: `no node ${node}` } : undefined
}

const isAddressOrSubnet = (text: string) => parseAddress(text) !== undefined || typeof parseSubnet(text) !== "string"

const probeProblems = (stage: Stage, probe: Check.Probe, at: string): Array<Problem> => {
  const problems: Array<Problem> = []
  for (const node of Check.nodesOf(probe)) {
    if (stage.nodes[node] === undefined) problems.push({ path: at, message: `no node ${node}` })
  }
  if ("reach" in probe) {
    const { to, network, protocol, port } = probe.reach
    if (stage.nodes[to] === undefined && parseAddress(to) === undefined) {
      problems.push({ path: `${at}.reach.to`, message: `${to} is neither a node nor an IPv4 address` })
    }
    if (network !== undefined && stage.networks?.[network] === undefined) {
      problems.push({ path: `${at}.reach.network`, message: `no network ${network}` })
    }
    if (protocol === "tcp" && port === undefined) {
      problems.push({ path: `${at}.reach.port`, message: "a tcp reach check needs a port" })
    }
  }
  if ("route" in probe) {
    if (!isAddressOrSubnet(probe.route.to)) {
      problems.push({ path: `${at}.route.to`, message: "expected an IPv4 address or subnet" })
    }
    if (probe.route.via !== undefined && parseAddress(probe.route.via) === undefined) {
      problems.push({ path: `${at}.route.via`, message: "expected an IPv4 address" })
    }
  }
  return problems
}

/** Problems of `checks` (of the stage or of a checks file) against the stage. */
export const checkProblems = (stage: Stage, checks: ReadonlyArray<Check.Check>, prefix = "checks"): Array<Problem> => {
  const problems: Array<Problem> = []
  const names = new Set<string>()
  for (const [i, check] of checks.entries()) {
    const at = `${prefix}[${i}]`
    if (names.has(check.name)) problems.push({ path: `${at}.name`, message: `two checks are named ${check.name}` })
    names.add(check.name)
    if ("breakFix" in check) {
      const problem = targetProblem(stage, check.breakFix.impair.target, `${at}.breakFix.impair.target`)
      if (problem) problems.push(problem)
      problems.push(...probeProblems(stage, check.breakFix.check, `${at}.breakFix.check`))
    } else problems.push(...probeProblems(stage, check, at))
  }
  return problems
}

export const labProblems = (stage: Stage): Array<Problem> => {
  const problems = linkProblems(stage)
  for (const [i, impairment] of (stage.impairments ?? []).entries()) {
    const problem = targetProblem(stage, impairment.target, `impairments[${i}].target`)
    if (problem) problems.push(problem)
  }
  problems.push(...checkProblems(stage, stage.checks ?? []))
  return problems
}
