// How a runner's replies are shaped: reply rows bounded by weight (each one is an acknowledged Postgres round
// trip), events held a while so a short test's go with its end, an experiment planned once per run and content.
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Lingering from "../src/internal/lingering.ts"
import * as Plans from "../src/internal/plans.ts"
import * as Rows from "../src/internal/rows.ts"

const weighed = (chunk: string, weight: number): Rows.Weighed<string> => ({ chunk, weight })

describe("Rows.rows", () => {
  it.effect("packs what waits into rows within the budget, in order; a chunk heavier than the budget goes alone", () =>
    Effect.gen(function* () {
      const upstream = Stream.fromArrays(
        [weighed("started", 0), weighed("events", 10), weighed("files", 90), weighed("finished", 5)],
        [weighed("big", 300), weighed("after", 1)]
      )
      const rows = yield* Stream.runCollect(Stream.chunks(Rows.rows(upstream, 100)))
      assert.deepStrictEqual(rows, [["started", "events", "files"], ["finished"], ["big"], ["after"]])
    })
  )

  it.effect("fails as its upstream fails, after the rows before", () =>
    Effect.gen(function* () {
      const upstream = Stream.concat(Stream.make(weighed("a", 1)), Stream.fail("refused" as const))
      const seen: Array<ReadonlyArray<string>> = []
      const exit = yield* Rows.rows(upstream, 100).pipe(
        Stream.chunks,
        Stream.runForEach((row) => Effect.sync(() => seen.push(row))),
        Effect.flip
      )
      assert.strictEqual(exit, "refused")
      assert.deepStrictEqual(seen, [["a"]])
    })
  )
})

describe("Lingering", () => {
  it.effect("holds lines for the linger, sends them at the limit at once, and hands over what is held", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const sent: Array<ReadonlyArray<string>> = []
        const lingering = yield* Lingering.make({
          linger: Duration.millis(250),
          limit: 3,
          send: (lines) => Effect.sync(() => sent.push(lines))
        })
        yield* lingering.add(["a"])
        yield* TestClock.adjust("100 millis")
        yield* lingering.add(["b"])
        assert.deepStrictEqual(sent, [])
        // 250 ms after the first line held, both go.
        yield* TestClock.adjust("150 millis")
        assert.deepStrictEqual(sent, [["a", "b"]])
        // The limit sends at once.
        yield* lingering.add(["c", "d", "e"])
        assert.deepStrictEqual(sent, [
          ["a", "b"],
          ["c", "d", "e"]
        ])
        // What is held when the attempt ends is the caller's to send.
        yield* lingering.add(["f"])
        assert.deepStrictEqual(yield* lingering.take, ["f"])
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(sent, [
          ["a", "b"],
          ["c", "d", "e"]
        ])
      })
    )
  )
})

describe("Plans", () => {
  it.effect("plans once per key, also when asked again while planning; a failure is not kept", () =>
    Effect.gen(function* () {
      const plans = Plans.make<string, string>(2)
      let runs = 0
      const gate = yield* Deferred.make<void>()
      const plan = (value: string) =>
        Effect.andThen(
          Deferred.await(gate),
          Effect.sync(() => {
            runs++
            return value
          })
        )
      const first = yield* Effect.forkChild(plans.get("run-1", plan("plan 1")))
      const second = yield* Effect.forkChild(plans.get("run-1", plan("another plan")))
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)], ["plan 1", "plan 1"])
      assert.strictEqual(runs, 1)
      assert.strictEqual(yield* plans.get("run-1", plan("again")), "plan 1")
      assert.strictEqual(runs, 1)

      assert.strictEqual(yield* Effect.flip(plans.get("run-2", Effect.fail("cannot plan"))), "cannot plan")
      assert.strictEqual(yield* plans.get("run-2", plan("plan 2")), "plan 2")
      // At most two kept: the oldest goes.
      yield* plans.get("run-3", plan("plan 3"))
      assert.strictEqual(yield* plans.get("run-1", plan("planned again")), "planned again")
    })
  )
})
