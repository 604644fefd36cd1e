/**
 * Events held a while before they are sent. Each reply row costs an acknowledged round trip through Postgres, so
 * sending every batch of the bus as it comes made a short test's stream a row per batch; held for `linger`, the
 * events of a test shorter than that go with its end, in one row. At most `limit` lines are held (more are sent
 * at once), and none longer than `linger` (a timer sends them), so a long test's events still arrive as it runs.
 */
import { type Duration, Effect, Semaphore } from "effect"

export interface Lingering {
  /** Holds lines; sends what is held once `limit` is reached, or `linger` after the first line held. */
  readonly add: (lines: ReadonlyArray<string>) => Effect.Effect<void>
  /** Takes what is held, to be sent by the caller (the attempt's end carries its last events itself). */
  readonly take: Effect.Effect<ReadonlyArray<string>>
}

export const make = Effect.fn("Lingering.make")(function* (options: {
  readonly linger: Duration.Duration
  readonly limit: number
  readonly send: (lines: ReadonlyArray<string>) => Effect.Effect<void>
}) {
  const scope = yield* Effect.scope
  // One sender at a time: the lines keep their order across the timer and `add`.
  const lock = yield* Semaphore.make(1)
  let held: Array<string> = []
  let armed = false
  const takeHeld = () => {
    const lines = held
    held = []
    return lines
  }
  const flush = lock.withPermit(Effect.suspend(() => (held.length === 0 ? Effect.void : options.send(takeHeld()))))
  const arm = Effect.suspend(() => {
    if (armed) return Effect.void
    armed = true
    const fire = Effect.andThen(
      Effect.sync(() => {
        armed = false
      }),
      flush
    )
    return Effect.asVoid(Effect.forkIn(Effect.delay(fire, options.linger), scope))
  })
  const add = (lines: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      if (lines.length === 0) return Effect.void
      held.push(...lines)
      return held.length >= options.limit ? flush : arm
    })
  return { add, take: lock.withPermit(Effect.sync(takeHeld)) } satisfies Lingering
})
