// The shared delay line behind step deadlines and running notices, on TestClock.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import * as DelayLine from "../src/internal/delayLine.ts"

describe("DelayLine", () => {
  it.effect("runs each action once its delay has passed, in order, and never a cancelled one", () =>
    Effect.gen(function* () {
      const line = yield* DelayLine.make(Duration.seconds(10))
      const ran: Array<string> = []
      const note = (name: string) => Effect.sync(() => void ran.push(name))
      yield* line.add(note("a"))
      yield* TestClock.adjust("4 seconds")
      const b = yield* line.add(note("b"))
      yield* line.add(note("c"))
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(ran, [])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(ran, ["a"])
      DelayLine.cancel(b)
      yield* TestClock.adjust("4 seconds")
      assert.deepStrictEqual(ran, ["a", "c"])
      // Empty again: a new entry wakes the line.
      yield* line.add(note("d"))
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(ran, ["a", "c", "d"])
    }).pipe(Effect.scoped)
  )

  it.effect("a failing action does not stop the line", () =>
    Effect.gen(function* () {
      const line = yield* DelayLine.make(Duration.seconds(1))
      const ran: Array<string> = []
      yield* line.add(Effect.die("boom"))
      yield* line.add(Effect.sync(() => void ran.push("after")))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(ran, ["after"])
    }).pipe(Effect.scoped)
  )
})
