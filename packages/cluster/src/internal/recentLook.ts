/**
 * The last look at something that changes slowly (the runner directory), served without waiting for the next:
 * younger than `fresh` it is served as is; older, up to `usable`, it is served as is while one new look is taken in
 * the background; older still, or before the first, the caller waits for a new look. With a plain time-to-live
 * cache the first dispatch of every round of attempts (rounds are seconds apart, the cache lives 500 ms) waited for
 * the directory's query, and every dispatch of that round with it.
 * A look that fails is not kept: callers that waited for it get its error, the others keep the previous look
 * until it is past `usable`. Looks are timed from their start (what they saw is at least that old).
 * A look that is not `settled` (the directory showed a runner that had just joined and held no shards yet) is served
 * only while fresh: it is about to change, and a stale one kept the runner's shards out of sight for two more
 * seconds, long enough for a short run to be placed without it.
 */
import { Clock, Duration, Effect, type Exit, Fiber } from "effect"

export interface Options<A, E> {
  readonly look: Effect.Effect<A, E>
  readonly fresh: Duration.Input
  readonly usable: Duration.Input
  /** Whether a look may be served past `fresh` (default: always). */
  readonly settled?: ((value: A) => boolean) | undefined
}

/** The served look; the background looks run in the caller's scope (closing it stops them). */
export const make = Effect.fnUntraced(function* <A, E>(options: Options<A, E>) {
  const scope = yield* Effect.scope
  const fresh = Duration.toMillis(Duration.fromInputUnsafe(options.fresh))
  const usable = Duration.toMillis(Duration.fromInputUnsafe(options.usable))
  const settled = options.settled ?? (() => true)
  let last: { readonly value: A; readonly at: number } | undefined
  // One look at a time; it never fails as a fiber (its exit is its value), so a look nobody waited for and that
  // failed is not reported as an unhandled fiber failure.
  let inFlight: Fiber.Fiber<Exit.Exit<A, E>> | undefined
  const start = (now: number) =>
    Effect.suspend(() => {
      if (inFlight !== undefined) return Effect.succeed(inFlight)
      const token = {}
      let current: typeof token | undefined = token
      return options.look.pipe(
        Effect.tap((value) =>
          Effect.sync(() => {
            if (last === undefined || last.at <= now) last = { value, at: now }
          })
        ),
        Effect.exit,
        Effect.ensuring(
          Effect.sync(() => {
            if (current === token) inFlight = undefined
            current = undefined
          })
        ),
        Effect.forkIn(scope, { startImmediately: true }),
        Effect.tap((fiber) =>
          Effect.sync(() => {
            // The look may have ended already (then `current` was cleared and nothing is in flight).
            if (current === token) inFlight = fiber
          })
        )
      )
    })
  return Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (last !== undefined && now - last.at < fresh) return last.value
    const fiber = yield* start(now)
    if (last !== undefined && now - last.at < usable && settled(last.value)) return last.value
    return yield* Effect.flatten(Fiber.join(fiber))
  })
})
