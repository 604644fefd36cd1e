/**
 * Waiting out a runner's join before placing an attempt. A runner that has just joined holds no shards: the engine's
 * hash ring gives it some of the others' (each runner recomputes the ring within `refreshAssignmentsInterval`, 1 s,
 * and releases what is no longer its own), it takes them at its next acquisition (within 1 s) and publishes them at
 * its next heartbeat (1 s). Until then a placement is wrong twice over: the new runner cannot be chosen (no shard to
 * salt the id onto, `placement.ts`), and an id salted onto another runner's shard may land on one about to move, so
 * it runs on the new runner anyway, or starts on the old one and is interrupted when that one lets the shard go (a
 * `runner_lost` re-run). A short run started then went all to one runner while the other sat idle. So a dispatch
 * whose eligible runners include one without shards of its group looks again until it has them, for at most
 * `within` from when this coordinator first saw it so (`since`, kept across dispatches): a runner that never gets
 * any holds up the dispatches once, not at every look.
 */
import { Clock, Duration, Effect } from "effect"
import type { RunnerRow } from "../RunnerDirectory.ts"
import { holds } from "./placement.ts"

export interface Options<E> {
  /** The live runners (a look no older than `interval` once a join is seen: `recentLook.ts`'s `settled`). */
  readonly look: Effect.Effect<ReadonlyArray<RunnerRow>, E>
  /** The runners of a look that could run the attempt, and the shard group each would run it in. */
  readonly eligible: (runners: ReadonlyArray<RunnerRow>) => ReadonlyArray<RunnerRow>
  readonly groupOf: (runner: RunnerRow) => string
  /** When each runner was first seen without shards of a group (`<runner> <group>`), across the run's dispatches. */
  readonly since: Map<string, number>
  readonly within: Duration.Input
  readonly interval: Duration.Input
}

/** The first look in which no eligible runner is still joining (or whose joins have all taken longer than `within`). */
export const settled = Effect.fnUntraced(function* <E>(options: Options<E>) {
  const within = Duration.toMillis(Duration.fromInputUnsafe(options.within))
  const { since, groupOf } = options
  while (true) {
    const runners = yield* options.look
    const now = yield* Clock.currentTimeMillis
    let waiting = false
    for (const runner of options.eligible(runners)) {
      const key = `${runner.name} ${groupOf(runner)}`
      if (holds(runner, groupOf(runner))) {
        since.delete(key)
        continue
      }
      const first = since.get(key) ?? now
      since.set(key, first)
      if (now - first < within) waiting = true
    }
    if (!waiting) return runners
    yield* Effect.sleep(options.interval)
  }
})
