// The scripted replay server (`ReplayServer.layerTest`): the verdicts it gives scripted clients are those the real
// server gives real ones (ReplayServer.test.ts), on TestClock.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { Plan, Step } from "../src/Plan.ts"
import * as ReplayServer from "../src/ReplayServer.ts"
import type * as ScriptedServer from "../src/ScriptedServer.ts"

const exchange = (command: string, response: string, path: string): Step => ({
  _tag: "Exchange",
  path,
  command: Buffer.from(command),
  response: Buffer.from(response),
  fault: undefined
})

const greeting: ReadonlyArray<Step> = [
  exchange("", "HELLO\n", "g[0]"),
  exchange("NAME bob\n", "HI bob\n", "g[1]"),
  exchange("QUIT\n", "BYE\n", "g[2]")
]

/** Serves `plan` to `clients` on the scripted server, with a step timeout of 5 seconds. */
const serve = (
  plan: Plan,
  clients: ReadonlyArray<ScriptedServer.ClientScript>,
  options: ReplayServer.ServeOptions = {}
) =>
  Effect.flatMap(ReplayServer.ReplayServer, (replay) =>
    replay.serve(plan, { announce: false, stepTimeout: Duration.seconds(5), ...options })
  ).pipe(Effect.provide(ReplayServer.ReplayServer.layerTest(() => clients)))

describe("ScriptedServer (ReplayServer.layerTest)", () => {
  it.effect("a client that plays the script completes it when its time has passed; counts as the real server's", () =>
    Effect.gen(function* () {
      const server = yield* serve({ _tag: "Single", steps: greeting }, [{ duration: "2 seconds" }], { connections: 1 })
      assert.strictEqual(server.port, 41000)
      const done = yield* Effect.forkChild(server.done)
      yield* TestClock.adjust("1 second")
      assert.isUndefined(done.pollUnsafe())
      yield* TestClock.adjust("1 second")
      const outcome = yield* Fiber.join(done)
      assert.deepStrictEqual(outcome.failures, [])
      assert.deepStrictEqual(outcome.summary, {
        connections: 1,
        completed: 1,
        stepsMatched: 3,
        bytesReceived: 14,
        bytesSent: 17,
        faultsInjected: 0
      })
    })
  )

  it.effect("a divergence is a ScriptMismatch at the first differing byte, and the server has failed", () =>
    Effect.gen(function* () {
      const server = yield* serve({ _tag: "Single", steps: greeting }, [{ diverges: { step: 1, sends: "NAME eve\n" } }])
      yield* server.failed
      const outcome = yield* server.finish("1 second")
      const [failure] = outcome.failures
      assert.strictEqual(failure?._tag, "ScriptMismatch")
      assert.include(failure?.message, "connection 0, step g[1]: the client's bytes differ from the script at offset 5")
      assert.strictEqual(outcome.summary.stepsMatched, 1)
    })
  )

  it.effect("a stalled client times out after the step timeout; finished sooner, it is cut off after the grace", () =>
    Effect.gen(function* () {
      const timedOut = yield* serve({ _tag: "Single", steps: greeting }, [{ stallsAt: 2 }])
      const failed = yield* Effect.forkChild(timedOut.failed)
      yield* TestClock.adjust("4999 millis")
      assert.isUndefined(failed.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(failed)
      const outcome = yield* timedOut.finish("1 second")
      assert.deepStrictEqual(
        outcome.failures.map((f) => f._tag),
        ["StepTimedOut"]
      )
      assert.include(
        outcome.failures[0]?.message,
        "connection 0, step g[2]: the client's input did not arrive within the step's 5000 ms (0 byte(s) matched)"
      )

      const cut = yield* serve({ _tag: "Single", steps: greeting }, [{ stallsAt: 2 }])
      const finishing = yield* Effect.forkChild(cut.finish("2 seconds"))
      yield* TestClock.adjust("2 seconds")
      const ended = yield* Fiber.join(finishing)
      assert.deepStrictEqual(
        ended.failures.map((f) => [f._tag, f.message]),
        [
          [
            "ScriptNotExhausted",
            "connection 0, step g[2]: the run ended with 1 step(s) of the script left (matched 0 byte(s) of this step)"
          ]
        ]
      )
      // Interrupted at the finish: the step timeout passing later adds nothing.
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* cut.finish("0 millis")).failures.length, 1)
    })
  )

  it.effect("connections a compound_multi script expects but no client opened fail the run unless optional", () =>
    Effect.gen(function* () {
      const plan: Plan = { _tag: "Multi", connections: [greeting, greeting.slice(0, 1)] }
      const strict = yield* (yield* serve(plan, [{}])).finish("1 second")
      assert.deepStrictEqual(
        strict.failures.map((f) => f.message),
        [
          "connection 1, step g[0]: the client never opened this connection with 1 step(s) of the script left (matched 0 byte(s) of this step)"
        ]
      )
      assert.strictEqual(strict.summary.completed, 1)
      const lenient = yield* (yield* serve(plan, [{}], { optionalConnections: true })).finish("1 second")
      assert.deepStrictEqual(lenient.failures, [])
    })
  )
})
