// Driving TestClock for the unit tests on the in-memory broker.
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"

/** Moves TestClock on in small steps until the fiber is done (every fiber here waits only on the Clock). */
export const drive = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function* () {
    for (let step = 0; fiber.pollUnsafe() === undefined; step++) {
      if (step > 20_000) return yield* Effect.die(new Error("still running after 1000 s of TestClock"))
      yield* TestClock.adjust("50 millis")
      yield* Effect.yieldNow
    }
    return yield* Fiber.join(fiber)
  })
