import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { EventBus } from "../src/EventBus.ts"
import * as Ids from "../src/Ids.ts"

const emitThree = Effect.gen(function* () {
  const bus = yield* EventBus
  const ids: Array<string> = []
  for (let i = 0; i < 3; i++) {
    const event = yield* bus.emit({ type: "test.started", entityId: "t", data: { name: "t", attempt: 1 } })
    ids.push(event.id)
  }
  return ids
}).pipe(Effect.provide(EventBus.layer))

describe("Ids", () => {
  it.effect("a seeded generator gives the same ids, in the same order, every time", () =>
    Effect.gen(function* () {
      const first = yield* emitThree.pipe(Effect.provide(Ids.layerTest(7)))
      const again = yield* emitThree.pipe(Effect.provide(Ids.layerTest(7)))
      const other = yield* emitThree.pipe(Effect.provide(Ids.layerTest(8)))
      assert.deepStrictEqual(again, first)
      assert.notDeepEqual(other, first)
      // TestClock stands at 0: the time part is zero, the counter counts up.
      assert.match(first[0]!, /^000000000-[0-9a-z]{7}-0$/)
      assert.deepStrictEqual(
        first.map((id) => id.split("-")[2]),
        ["0", "1", "2"]
      )
      const token = yield* Ids.token(8).pipe(Effect.provide(Ids.layerTest(7)))
      assert.strictEqual(token, yield* Ids.token(8).pipe(Effect.provide(Ids.layerTest(7))))
    })
  )

  it.effect("without a layer the live generator is used: unique ids and tokens of the asked length", () =>
    Effect.gen(function* () {
      const ids = new Set<string>()
      for (let i = 0; i < 1000; i++) ids.add(yield* Ids.unique("x"))
      assert.strictEqual(ids.size, 1000)
      const tokens = yield* Effect.forEach([1, 8, 40], Ids.token)
      assert.deepStrictEqual(
        tokens.map((t) => t.length),
        [1, 8, 40]
      )
      for (const t of tokens) assert.match(t, /^[0-9a-z]+$/)
      // Two live generators (two processes) do not share a tag.
      assert.notStrictEqual(Ids.makeLive().unique("x"), Ids.makeLive().unique("x"))
    })
  )

  it("every character of a token is about equally likely (no modulo bias towards the first letters)", () => {
    const counts = new Map<string, number>()
    const text = Ids.makeSeeded(3).token(36_000)
    for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1)
    assert.strictEqual(counts.size, 36)
    for (const n of counts.values()) assert.isTrue(n > 800 && n < 1200, String(n))
  })
})
