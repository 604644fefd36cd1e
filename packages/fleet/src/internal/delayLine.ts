// Many timers of one and the same delay (a step's answer deadline, an agent's running notice) on one fiber: as the
// delay is fixed, entries fall due in the order they were added, so a FIFO and a single sleep serve them all. A
// fiber and a timer per command cost more than the rest of a fast command's handling (see bench/fleet.md).
import { Clock, Duration, Effect, Queue, type Scope } from "effect"

/** What `add` returns: `cancel` it when the thing it guards happened in time. */
export interface Pending {
  cancelled: boolean
}

interface Entry extends Pending {
  readonly due: number
  readonly action: Effect.Effect<void>
}

export interface DelayLine {
  /** Runs `action` once the delay has passed, unless cancelled first. Synchronous: no fiber, no timer. */
  readonly add: (action: Effect.Effect<void>) => Effect.Effect<Pending>
}

/** A pending that has already happened (nothing was put on a line). */
export const done: Pending = { cancelled: true }

export const cancel = (pending: Pending): void => {
  pending.cancelled = true
}

/** One fiber in the Scope runs every due action, in order; on TestClock it follows the test's clock. */
export const make = Effect.fn("DelayLine.make")(function* (
  delay: Duration.Duration
): Effect.fn.Return<DelayLine, never, Scope.Scope> {
  const millis = Duration.toMillis(delay)
  let line: Array<Entry> = []
  let head = 0
  const wake = yield* Queue.sliding<void>(1)

  const runDue = Effect.fn("DelayLine.runDue")(function* () {
    while (true) {
      const entry = line[head]
      if (entry === undefined) {
        line = []
        head = 0
        return yield* Queue.take(wake)
      }
      if (entry.cancelled) {
        head++
        continue
      }
      const wait = entry.due - (yield* Clock.currentTimeMillis)
      if (wait > 0) return yield* Effect.sleep(Duration.millis(wait))
      head++
      // A long-busy line never empties: drop what has run now and then.
      if (head > 1024 && head * 2 > line.length) {
        line = line.slice(head)
        head = 0
      }
      yield* entry.action.pipe(
        Effect.catchDefect((defect) => Effect.logError(`a delayed action failed: ${String(defect)}`))
      )
    }
  })
  yield* Effect.forkScoped(Effect.forever(runDue()))

  return {
    add: (action) =>
      Effect.withFiber((fiber) => {
        const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
        const entry: Entry = { due: now + millis, action, cancelled: false }
        line.push(entry)
        // Only an empty line needs waking: otherwise the sleeping fiber's head falls due first anyway.
        if (line.length - head === 1) Queue.offerUnsafe(wake, undefined)
        return Effect.succeed(entry)
      })
  }
})
