// Several copies of one stage side by side (`--instance alice`): each instance has its own record, its own names
// (container and network names carry the instance), its own bridges, and its own block of the stage's address pool
// (`instances: { pool: 10.240.0.0/16 }`). Every IPv4 address of the stage's span — the smallest block holding all
// its subnets and link addresses — is moved into the instance's block wherever it is written: subnets, addresses,
// commands, hooks, environment values, checks. Host names and interface names stay as they are.
import { Effect, FileSystem, Option, Path } from "effect"
import type { Loaded, Stage } from "../Stage.ts"
import { InstanceInvalid } from "../StageError.ts"
import * as StageState from "../StageState.ts"
import { bridgeNameOption } from "./checks.ts"
import { formatAddress, parseAddress, parseSubnet, type Subnet } from "./ipv4.ts"

/** Where an instance's record lives: `<stateDir>/instances/<name>/` (the project's own stage: `<stateDir>/`). */
export const recordDir = (path: Path.Path, stateDir: string, instance: string | undefined): string =>
  instance === undefined ? stateDir : path.join(stateDir, "instances", instance)

/** Every record of the project: its own stage's and each instance's. */
export const records = Effect.fn("Instance.records")(function* (stateDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const dirs = [stateDir]
  const root = path.join(stateDir, "instances")
  const names = yield* fs.readDirectory(root).pipe(Effect.orElseSucceed(() => [] as Array<string>))
  for (const name of names.sort()) dirs.push(path.join(root, name))
  const out: Array<{ readonly dir: string; readonly current: StageState.Current }> = []
  for (const dir of dirs) {
    const current = yield* StageState.read(dir).pipe(Effect.orElseSucceed(() => Option.none<StageState.Current>()))
    if (Option.isSome(current)) out.push({ dir, current: current.value })
  }
  return out as ReadonlyArray<{ readonly dir: string; readonly current: StageState.Current }>
})

/** The smallest aligned block holding every subnet and link address of the stage. */
const spanOf = (stage: Stage): Subnet | undefined => {
  const points: Array<number> = []
  for (const network of Object.values(stage.networks ?? {})) {
    const subnet = network.subnet === undefined ? undefined : parseSubnet(network.subnet)
    if (subnet !== undefined && typeof subnet !== "string") {
      points.push(subnet.network, subnet.network + 2 ** (32 - subnet.prefix) - 1)
    }
  }
  for (const link of stage.links ?? []) {
    for (const end of [link.a, link.b]) {
      const address = end.address === undefined ? undefined : parseAddress(end.address.split("/")[0] ?? "")
      if (address !== undefined) points.push(address)
    }
  }
  if (points.length === 0) return undefined
  const low = Math.min(...points)
  const high = Math.max(...points)
  let prefix = 32
  while (prefix > 0 && low - (low % 2 ** (32 - prefix)) + 2 ** (32 - prefix) - 1 < high) prefix--
  return { network: low - (low % 2 ** (32 - prefix)), prefix }
}

const dottedQuad = /\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/g

/** Every string of a decoded stage, changed by `f`; other values (numbers, durations) are kept as they are. */
const mapStrings = (value: unknown, f: (s: string) => string): unknown => {
  if (typeof value === "string") return f(value)
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, f))
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, f)]))
  }
  return value
}

/** The first free block of the pool among the slots `used`. */
export const freeSlot = (used: ReadonlySet<number>): number => {
  let slot = 0
  while (used.has(slot)) slot++
  return slot
}

/** The stage as instance `instance` in block `slot` of its pool: addresses moved, or why it cannot be. */
export const localize = (loaded: Loaded, instance: string, slot: number): Effect.Effect<Loaded, InstanceInvalid> => {
  const { stage } = loaded
  const fail = (reason: string) => Effect.fail(new InstanceInvalid({ stage: stage.name, instance, reason }))
  const fixed = Object.entries(stage.networks ?? {}).find(([, n]) => n.driverOptions?.[bridgeNameOption] !== undefined)
  if (fixed) return fail(`network ${fixed[0]} has a fixed bridge name, which two instances cannot share`)
  const span = spanOf(stage)
  if (span === undefined) return Effect.succeed(loaded)
  const pool = stage.instances === undefined ? undefined : parseSubnet(stage.instances.pool)
  if (pool === undefined || typeof pool === "string") {
    return fail("the stage file has no address pool for instances: add `instances: { pool: 10.240.0.0/16 }`")
  }
  const size = 2 ** (32 - span.prefix)
  if ((slot + 1) * size > 2 ** (32 - pool.prefix)) {
    return fail(
      `the pool ${stage.instances?.pool} has room for ${Math.floor(2 ** (32 - pool.prefix) / size)} instances`
    )
  }
  const base = pool.network + slot * size
  const move = (text: string) =>
    text.replace(dottedQuad, (quad) => {
      const address = parseAddress(quad)
      return address !== undefined && address - (address % size) === span.network
        ? formatAddress(base + address - span.network)
        : quad
    })
  return Effect.succeed({ ...loaded, stage: mapStrings(stage, move) as Stage })
}
