// What the coordinator does on the path of every dispatch, made cheaper: its look at the runner directory
// (internal/recentLook.ts, on Effect's clock: a dispatch is served the last look without waiting while it is usable,
// and one new look is taken for all callers in the background), and its journal held open (Journal.appender).
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, FileSystem } from "effect"
import { TestClock } from "effect/testing"
import * as RecentLook from "../src/internal/recentLook.ts"
import * as Journal from "../src/Journal.ts"

/** A look that takes 100 ms and answers its number (1, 2, …), or fails while `down`. */
const counted = () => {
  const state = { looks: 0, down: false }
  const look = Effect.suspend(() => {
    const n = ++state.looks
    return Effect.sleep("100 millis").pipe(
      Effect.andThen(state.down ? Effect.fail(`look ${n} failed`) : Effect.succeed(n))
    )
  })
  return { state, look }
}

/** Starts `get` and runs it as far as it goes without the clock moving: its exit, or undefined while it waits. */
const now = <A, E>(get: Effect.Effect<A, E>) =>
  Effect.map(Effect.forkChild(get, { startImmediately: true }), (fiber) => ({ fiber, exit: fiber.pollUnsafe() }))

describe("RecentLook", () => {
  it.effect("an old look is served at once while one new look is taken for every caller", () =>
    Effect.gen(function* () {
      const { state, look } = counted()
      const get = yield* RecentLook.make({ look, fresh: "500 millis", usable: "2 seconds" })
      const first = yield* now(get)
      assert.isUndefined(first.exit, "the first call waits for the first look")
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(first.fiber), 1)
      // Fresh: served, no look.
      assert.strictEqual(yield* get, 1)
      assert.strictEqual(state.looks, 1)
      // Old but usable: three dispatches at once are all served the last look now; one look is taken for them.
      yield* TestClock.adjust("500 millis")
      const served = yield* Effect.all([now(get), now(get), now(get)])
      assert.deepStrictEqual(
        served.map(({ exit }) => exit),
        [Exit.succeed(1), Exit.succeed(1), Exit.succeed(1)]
      )
      assert.strictEqual(state.looks, 2)
      // Once it lands it is served, fresh.
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* get, 2)
      assert.strictEqual(state.looks, 2)
    })
  )

  it.effect("a look older than usable is waited for", () =>
    Effect.gen(function* () {
      const { state, look } = counted()
      const get = yield* RecentLook.make({ look, fresh: "500 millis", usable: "2 seconds" })
      const first = yield* now(get)
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(first.fiber), 1)
      yield* TestClock.adjust("2 seconds")
      const late = yield* now(get)
      assert.isUndefined(late.exit, "a look 2.1 s old is not served")
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(late.fiber), 2)
      assert.strictEqual(state.looks, 2)
    })
  )

  it.effect("a look that is not settled (a runner that has just joined holds no shards) is not served stale", () =>
    Effect.gen(function* () {
      const { state, look } = counted()
      const get = yield* RecentLook.make({ look, fresh: "500 millis", usable: "2 seconds", settled: (n) => n > 1 })
      const first = yield* now(get)
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(first.fiber), 1)
      // Fresh: served as is, settled or not.
      assert.strictEqual(yield* get, 1)
      yield* TestClock.adjust("500 millis")
      const waiting = yield* now(get)
      assert.isUndefined(waiting.exit, "an unsettled look 0.6 s old is not served: the new one is waited for")
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(waiting.fiber), 2)
      // Look 2 is settled: served while usable, as any look.
      yield* TestClock.adjust("600 millis")
      assert.deepStrictEqual((yield* now(get)).exit, Exit.succeed(2))
      assert.strictEqual(state.looks, 3)
    })
  )

  it.effect("a failed look is not kept: the previous one serves while usable, then its error reaches the caller", () =>
    Effect.gen(function* () {
      const { state, look } = counted()
      const get = yield* RecentLook.make({ look, fresh: "500 millis", usable: "2 seconds" })
      const first = yield* now(get)
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(first.fiber), 1)
      state.down = true
      yield* TestClock.adjust("500 millis")
      assert.strictEqual(yield* get, 1)
      yield* TestClock.adjust("100 millis")
      // Look 2 failed in the background; look 1 (0.7 s old) still serves, and look 3 is taken.
      assert.strictEqual(yield* get, 1)
      assert.strictEqual(state.looks, 3)
      yield* TestClock.adjust("1400 millis")
      const late = yield* now(get)
      yield* TestClock.adjust("100 millis")
      const exit = yield* Fiber.await(late.fiber)
      assert.deepStrictEqual(exit, Exit.fail("look 4 failed"))
      state.down = false
      const back = yield* now(get)
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(back.fiber), 5)
    })
  )
})

describe("Journal.appender", () => {
  it.live("entries appended at once through one open journal are whole lines, read back as written", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const runDir = yield* fs.makeTempDirectoryScoped()
      // An entry from before (a resumed run's journal is appended to as well).
      yield* Journal.append(runDir, { _tag: "Began", entityId: "e0", incarnation: "i0", runner: "r0", host: "h0" })
      const append = yield* Journal.appender(runDir)
      const entries = Array.from({ length: 64 }, (_, i) => ({
        _tag: "Began" as const,
        entityId: `e${i + 1}`,
        incarnation: `i${i + 1}-${"x".repeat(i * 97)}`,
        runner: "r",
        host: "h"
      }))
      yield* Effect.forEach(entries, append, { concurrency: "unbounded", discard: true })
      const read = yield* Journal.read(runDir)
      assert.strictEqual(read.length, 65)
      assert.deepStrictEqual(
        read.map((entry) => entry.entityId).sort(),
        ["e0", ...entries.map((entry) => entry.entityId)].sort()
      )
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )
})
