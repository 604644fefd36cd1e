// The same protocol against a real Mosquitto started by the test (anonymous, and with a password file).
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Effect, Fiber, Redacted, Schedule, Stream } from "effect"
import { MqttConnection } from "../src/index.ts"
import { layer, mosquitto, runMosquittoTests } from "./helpers.ts"
import { startAgents, startOperator, twoPipelinesOnThreeAgents } from "./scenarios.ts"

const eventually = <A>(effect: Effect.Effect<A>, until: (a: A) => boolean) =>
  Effect.repeat(effect, { until, schedule: Schedule.spaced("20 millis") }).pipe(Effect.timeout("60 seconds"))

describe.runIf(runMosquittoTests)("fleet on Mosquitto", () => {
  it.live("runs two pipelines on three agents (JSON, signed)", () =>
    Effect.gen(function* () {
      const broker = yield* mosquitto()
      yield* twoPipelinesOnThreeAgents(broker, "json")
    }).pipe(Effect.provide(layer))
  )

  it.live("authenticates with a password file; plain-text mode; wrong passwords are refused", () =>
    Effect.gen(function* () {
      const broker = yield* mosquitto({ username: "fleet", password: "pa55word" })
      const access = { url: broker.url, username: "fleet", password: Redacted.make("pa55word") }
      yield* twoPipelinesOnThreeAgents(access, "plain")
      const refused = yield* MqttConnection.make({
        url: broker.url,
        clientId: "intruder",
        username: "fleet",
        password: Redacted.make("wrong")
      }).pipe(
        Effect.flatMap((c) => c.awaitConnected("3 seconds")),
        Effect.flip
      )
      assert.strictEqual(refused._tag, "AuthRefused")
      assert.include(refused.message, broker.url)
      assert.notInclude(refused.message, "wrong")
    }).pipe(Effect.provide(layer))
  )

  it.live(
    "loses no answer when Mosquitto restarts in the middle of a pipeline",
    () =>
      Effect.gen(function* () {
        const broker = yield* mosquitto()
        const bus = yield* EventBus.EventBus
        const events = yield* bus.subscribe
        const operator = yield* startOperator(broker, { expectAgents: 2 })
        const agents = yield* startAgents(broker, ["m1", "m2"])
        yield* operator.awaitRegistrations
        const bothRunning = events.pipe(
          Stream.filter((e) => e.type === "step.state_changed" && e.data.to === "running"),
          Stream.take(2),
          Stream.runDrain
        )
        const run = yield* Effect.forkChild(
          operator.runPipelines([{ name: "p", steps: ["sleep 1; echo slept", "echo after"] }])
        )
        yield* bothRunning
        yield* broker.stop
        yield* Effect.forEach(agents, (agent) => eventually(agent.stats, (s) => s.executed >= 1))
        yield* broker.start
        const summary = yield* Fiber.join(run)
        assert.deepStrictEqual(
          summary.steps.map((s) => [s.state, s.response?.output]),
          [
            ["succeeded", "slept\n"],
            ["succeeded", "after\n"],
            ["succeeded", "slept\n"],
            ["succeeded", "after\n"]
          ]
        )
      }).pipe(Effect.provide(layer)),
    90_000
  )
})
