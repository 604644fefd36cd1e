import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, Metric, References } from "effect"
import { EventBus } from "../src/EventBus.ts"
import * as Observers from "../src/Observers.ts"

const emitSome = Effect.gen(function* () {
  const bus = yield* EventBus
  for (let i = 0; i < 3; i++)
    yield* bus.emit({
      type: "test.started",
      entityId: `t${i}`,
      data: { name: `t${i}`, attempt: 1 }
    })
  yield* bus.emit({
    type: "test.finished",
    entityId: "t0",
    data: { name: "t0", attempt: 1, status: "passed", durationMs: 1 }
  })
})

describe("Observers", () => {
  it.effect("metrics: one counter series per event type, counting every event", () =>
    Effect.gen(function* () {
      const started = Metric.withAttributes(Observers.eventsTotal, { type: "test.started" })
      const finished = Metric.withAttributes(Observers.eventsTotal, { type: "test.finished" })
      const before = [(yield* Metric.value(started)).count, (yield* Metric.value(finished)).count]
      yield* emitSome.pipe(Effect.provide(Observers.metrics.pipe(Layer.provideMerge(EventBus.layer))))
      const after = [(yield* Metric.value(started)).count, (yield* Metric.value(finished)).count]
      assert.deepStrictEqual([Number(after[0]) - Number(before[0]), Number(after[1]) - Number(before[1])], [3, 1])
    })
  )

  it.effect("logging: every event is logged with its type and entity", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const capture = Logger.make<unknown, void>(({ message }) => {
        lines.push(Array.isArray(message) ? message.join(" ") : String(message))
      })
      yield* emitSome.pipe(
        Effect.provide(
          Observers.logging.pipe(
            Layer.provideMerge(EventBus.layer),
            Layer.provideMerge(Logger.layer([capture])),
            Layer.provideMerge(Layer.succeed(References.MinimumLogLevel, "All"))
          )
        )
      )
      assert.deepStrictEqual(lines, ["test.started t0", "test.started t1", "test.started t2", "test.finished t0"])
    })
  )
})
