/**
 * Where an attempt goes: the eligible runner with the most free slots, and an entity id that hashes to one of
 * the shards that runner owns now. Entity → shard is a hash and shard → runner a hash ring, so plain ids would
 * give each runner a random share (3/1/0 was seen); salting the id until it lands on the chosen runner's shards
 * spreads the work by free slots. Placement is a hint: if the shard moved meanwhile, the new owner runs it. The
 * shards are those each runner holds now (the locks it took, as it publishes them): only a shard lock's holder runs
 * what lands on the shard, and the engine shows a client (`Sharding`) no view of where its hash ring puts one. While
 * a runner joins they move (`joining.ts`): the caller waits that out before it places.
 */
import { createHash } from "node:crypto"
import type { RunnerRow } from "../RunnerDirectory.ts"

/** `<slug cut to 64>-<8 hex of sha256(name)>`: unique in a run, and short enough for the entity id column. */
export const testKey = (slug: string, name: string) =>
  `${slug.slice(0, 64)}-${createHash("sha256").update(name).digest("hex").slice(0, 8)}`

/** Whether the runner holds a shard of `group` now: one that has just joined holds none until they move to it. */
export const holds = (runner: RunnerRow, group: string) => runner.shards.some((shard) => shard.startsWith(`${group}:`))

/**
 * The runner with the most free slots (`inFlight`: what this coordinator sent it and has not had back). A runner
 * that holds no shard yet of the group it would run the attempt in (`groupOf`) comes after those that do: it has
 * just joined and its shards are still moving to it, so the id could not be salted onto it and would land on a
 * random shard, mostly a busy runner's (three runners ran no faster than one right after two of them joined).
 * After `joining.ts`'s wait that is a runner whose join has taken longer than the wait.
 */
export const choose = (
  eligible: ReadonlyArray<RunnerRow>,
  inFlight: ReadonlyMap<string, number>,
  groupOf: (runner: RunnerRow) => string = (runner) => runner.group
): RunnerRow | undefined => {
  const waiting = (runner: RunnerRow) => (holds(runner, groupOf(runner)) ? 0 : 1)
  const free = (runner: RunnerRow) => runner.slots - (inFlight.get(runner.name) ?? 0)
  return [...eligible].sort((a, b) => waiting(a) - waiting(b) || free(b) - free(a) || a.name.localeCompare(b.name))[0]
}

/** The first salt whose id falls on one of `shards` (`shardOf` is the engine's hash); salt 0 when none does. */
export const salted = (
  base: string,
  shards: ReadonlyArray<string>,
  shardOf: (entityId: string) => string,
  tries = 1024
): string => {
  const owned = new Set(shards)
  for (let salt = 0; salt < tries; salt++) {
    const id = `${base}#${salt}`
    if (owned.has(shardOf(id))) return id
  }
  return `${base}#0`
}
