import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { EventBus } from "../src/EventBus.ts"

const sample = (n: number) => ({
  type: "test.started" as const,
  entityId: `t${n}`,
  data: { name: `t${n}`, attempt: 1 }
})

describe("EventBus", () => {
  it.effect("a subscriber registered before a publish sees it, in order", () =>
    Effect.gen(function* () {
      const bus = yield* EventBus
      const stream = yield* bus.subscribe
      // Published before anyone pulls from the stream: the subscription already exists.
      for (let i = 0; i < 5; i++) yield* bus.emit(sample(i))
      const seen = yield* stream.pipe(Stream.take(5), Stream.runCollect)
      assert.deepStrictEqual(
        seen.map((e) => e.entityId),
        ["t0", "t1", "t2", "t3", "t4"]
      )
    }).pipe(Effect.provide(EventBus.layer))
  )

  it.effect("emit stamps a unique id and the Clock's time", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 0, 2, 3, 4, 5))
      const bus = yield* EventBus
      const a = yield* bus.emit(sample(1))
      const b = yield* bus.emit(sample(1))
      assert.strictEqual(a.timestamp, "2026-01-02T03:04:05.000Z")
      assert.notStrictEqual(a.id, b.id)
      assert.deepStrictEqual({ ...a, id: b.id }, b)
    }).pipe(Effect.provide(EventBus.layer))
  )

  it.effect("back-pressure: a slow subscriber makes publishers wait and loses nothing", () =>
    Effect.gen(function* () {
      const bus = yield* EventBus
      const stream = yield* bus.subscribe
      const total = 100
      const publisher = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: total }, (_, i) => i),
          (i) => bus.emit(sample(i)),
          { discard: true }
        )
      )
      // Nobody consumes yet: the publisher fills the 8-slot buffer and waits instead of dropping.
      yield* Effect.yieldNow
      assert.isUndefined(publisher.pollUnsafe())
      const seen = yield* stream.pipe(Stream.take(total), Stream.runCollect)
      yield* Fiber.join(publisher)
      assert.deepStrictEqual(
        seen.map((e) => e.entityId),
        Array.from({ length: total }, (_, i) => `t${i}`)
      )
    }).pipe(Effect.provide(EventBus.layerWith({ capacity: 8 })))
  )

  it.effect("dropping policy: publishers never wait, the subscriber gets the first `capacity` events", () =>
    Effect.gen(function* () {
      const bus = yield* EventBus
      const stream = yield* bus.subscribe
      for (let i = 0; i < 20; i++) yield* bus.emit(sample(i))
      const seen = yield* stream.pipe(Stream.take(4), Stream.runCollect)
      assert.deepStrictEqual(
        seen.map((e) => e.entityId),
        ["t0", "t1", "t2", "t3"]
      )
    }).pipe(Effect.provide(EventBus.layerWith({ capacity: 4, policy: "dropping" })))
  )

  it.effect("every subscriber sees every event", () =>
    Effect.gen(function* () {
      const bus = yield* EventBus
      const a = yield* bus.subscribe
      const b = yield* bus.subscribe
      const ready = yield* Deferred.make<void>()
      const fa = yield* Effect.forkChild(
        Effect.andThen(Deferred.await(ready), a.pipe(Stream.take(3), Stream.runCollect))
      )
      const fb = yield* Effect.forkChild(b.pipe(Stream.take(3), Stream.runCollect))
      for (let i = 0; i < 3; i++) yield* bus.emit(sample(i))
      yield* Deferred.succeed(ready, undefined)
      const [ra, rb] = yield* Effect.all([Fiber.join(fa), Fiber.join(fb)])
      assert.deepStrictEqual(
        ra.map((e) => e.id),
        rb.map((e) => e.id)
      )
      assert.strictEqual(ra.length, 3)
    }).pipe(Effect.provide(EventBus.layer))
  )

  it.effect("emit takes only members of TestbedEvent: the type picks the entity and the shape of the data", () =>
    Effect.gen(function* () {
      const bus = yield* EventBus
      const stream = yield* bus.subscribe
      const event = yield* bus.emit({ type: "agent.disconnected", entityId: "sut-a", data: { graceMs: 500 } })
      assert.strictEqual(event.entityType, "agent")
      // Typed all the way: the returned event's data is the family's payload, and so is the subscriber's.
      assert.strictEqual(event.data.graceMs, 500)
      const [seen] = yield* stream.pipe(Stream.take(1), Stream.runCollect)
      assert.strictEqual(seen?.type === "agent.disconnected" ? seen.data.graceMs : undefined, 500)
      // What the compiler refuses (`pnpm run typecheck`): an unused @ts-expect-error is itself an error, so each
      // line below fails the typecheck as soon as emit accepts it. Never run: only their count is checked here.
      const refused = [
        // @ts-expect-error an event type outside the union
        () => bus.emit({ type: "agent.vanished", entityId: "a", data: {} }),
        // @ts-expect-error the data of another family
        () => bus.emit({ type: "test.started", entityId: "t", data: { graceMs: 1 } }),
        // @ts-expect-error a field of the wrong type
        () => bus.emit({ type: "test.started", entityId: "t", data: { name: "t", attempt: "1" } }),
        // @ts-expect-error a required field missing
        () => bus.emit({ type: "test.finished", entityId: "t", data: { name: "t", attempt: 1 } }),
        // @ts-expect-error a value outside the family's literals
        () => bus.emit({ type: "stage.up_failed", entityId: "s", data: { runId: "r", reason: "gave up" } })
      ]
      assert.strictEqual(refused.length, 5)
    }).pipe(Effect.provide(EventBus.layer))
  )
})
