// Bus throughput: events/s from one publisher to one subscriber through the EventBus, beside a raw Effect
// Queue offer/take baseline measured in the same run. Run: node_modules/.bin/node bench/events.ts [events]
import { Effect, Fiber, Queue, Stream } from "effect"
import { EventBus } from "../packages/events/src/EventBus.ts"
import type { EventOf } from "../packages/events/src/TestbedEvent.ts"

const total = Number(process.argv[2] ?? 1_000_000)
const capacity = 4096
const event: EventOf<"step.started"> = {
  id: "0",
  type: "step.started",
  entityType: "step",
  entityId: "t/step/0",
  timestamp: "2026-01-01T00:00:00.000Z",
  data: { test: "t", index: 0, kind: "wait" }
}

const time = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const start = performance.now()
    yield* effect
    return (performance.now() - start) / 1000
  })

// The baseline: what the bus is built on, with nothing of ours around it.
const rawQueue = Effect.gen(function* () {
  const queue = yield* Queue.bounded<EventOf<"step.started">>(capacity)
  const consumer = yield* Effect.forkChild(
    Effect.gen(function* () {
      let seen = 0
      while (seen < total) seen += (yield* Queue.takeAll(queue)).length
    })
  )
  for (let i = 0; i < total; i++) yield* Queue.offer(queue, event)
  yield* Fiber.join(consumer)
})

const bus = Effect.gen(function* () {
  const bus = yield* EventBus
  const stream = yield* bus.subscribe
  const consumer = yield* Effect.forkChild(Stream.runDrain(Stream.take(stream, total)))
  for (let i = 0; i < total; i++) yield* bus.publish(event)
  yield* Fiber.join(consumer)
}).pipe(Effect.scoped, Effect.provide(EventBus.layerWith({ capacity })))

const program = Effect.gen(function* () {
  // Warm up both paths so the JIT has seen them before the measured runs.
  yield* time(rawQueue)
  yield* time(bus)
  const rounds = 3
  let raw = Number.POSITIVE_INFINITY
  let ours = Number.POSITIVE_INFINITY
  for (let r = 0; r < rounds; r++) {
    raw = Math.min(raw, yield* time(rawQueue))
    ours = Math.min(ours, yield* time(bus))
  }
  const rawRate = total / raw
  const busRate = total / ours
  console.log(`events: ${total}, capacity ${capacity}, best of ${rounds}`)
  console.log(`raw Queue offer/take : ${Math.round(rawRate).toLocaleString("en")} events/s`)
  console.log(`EventBus publish→sub : ${Math.round(busRate).toLocaleString("en")} events/s`)
  console.log(`ratio bus/raw        : ${(busRate / rawRate).toFixed(2)}`)
})

Effect.runPromise(program)
