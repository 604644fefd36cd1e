/**
 * The reply rows of an attempt's stream. The engine stores each array a stream emits as one reply row and sends
 * the next only once the coordinator has acknowledged it (a Postgres write and a notification on each side), so
 * the fewer rows the faster; but a row must stay small. Each pull of `rows` gives what is waiting upstream, in
 * order, up to `budget` in weight (at least one chunk); what does not fit waits for the next row.
 */
import type { Array as Arr } from "effect"
import { Effect, Stream } from "effect"

/** A chunk and its weight (the bytes it carries). */
export interface Weighed<A> {
  readonly chunk: A
  readonly weight: number
}

export const rows = <A, E, R>(upstream: Stream.Stream<Weighed<A>, E, R>, budget: number): Stream.Stream<A, E, R> =>
  Stream.transformPull(upstream, (pull) =>
    Effect.sync(() => {
      let waiting: ReadonlyArray<Weighed<A>> = []
      return Effect.gen(function* () {
        if (waiting.length === 0) waiting = yield* pull
        let weight = waiting[0]!.weight
        let count = 1
        while (count < waiting.length && weight + waiting[count]!.weight <= budget) {
          weight += waiting[count]!.weight
          count++
        }
        const row = waiting.slice(0, count).map((weighed) => weighed.chunk) as Arr.NonEmptyArray<A>
        waiting = waiting.slice(count)
        return row
      })
    })
  )
