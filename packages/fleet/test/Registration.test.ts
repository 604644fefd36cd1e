// Signed registrations: with a shared secret the operator takes only registrations signed with it (fresh),
// so a client on the broker without the secret cannot enrol a made-up agent.
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Clock, Effect, Fiber, Option, Queue, Redacted, Stream } from "effect"
import { Broker, MqttConnection, Protocol, Security } from "../src/index.ts"
import { layer } from "./helpers.ts"
import { connectionOf, secret, startAgents, startOperator } from "./scenarios.ts"

const topics = Protocol.defaultTopics

describe("signed registrations", () => {
  it.live("the operator ignores unsigned, forged and stale registrations and takes the signed agent", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const bus = yield* EventBus.EventBus
      const events = yield* bus.subscribe
      const refusals = yield* Effect.forkChild(
        events.pipe(
          Stream.filter((e) => e.type === "agent.registration_refused"),
          Stream.map((e) => [e.entityId, e.data.reason] as const),
          Stream.take(5),
          Stream.runCollect
        )
      )
      const operator = yield* startOperator(broker, { expectAgents: 1 })
      const mallory = yield* MqttConnection.make({ ...connectionOf(broker), clientId: "mallory" })
      yield* mallory.awaitConnected("10 seconds")
      yield* mallory.subscribe([topics.ack])
      const now = yield* Clock.currentTimeMillis
      const guessed = Security.signed(Redacted.make("a guessed secret"))
      const real = Security.signed(secret)
      const commandSignature = Security.sign(real, { client_id: "rogue-reuse", command: "x" }, "c1", now).signature!
      const rogue = [
        "rogue-raw",
        '{"client_id":"rogue-unsigned"}',
        Security.registrationPayload(guessed, "rogue-forged", "s1", now),
        Security.registrationPayload(real, "rogue-stale", "s1", now - 10 * 60_000),
        // A signature of a command (which a client on the broker can read) is no registration signature.
        JSON.stringify({ client_id: "rogue-reuse", timestamp: now, session: "s1", signature: commandSignature })
      ]
      for (const payload of rogue) yield* mallory.publish(topics.registration, payload, 1)
      const refused = yield* Fiber.join(refusals).pipe(Effect.timeout("30 seconds"))
      assert.deepStrictEqual([...refused].sort(), [
        ["rogue-forged", "forged"],
        ["rogue-reuse", "forged"],
        ["rogue-stale", "stale"],
        ["unknown", "unsigned"],
        ["unknown", "unsigned"]
      ])
      yield* startAgents(broker, ["sut-a"])
      assert.deepStrictEqual(yield* operator.awaitRegistrations, ["sut-a"])
      // The operator answers registrations in order: had it acked a rogue id, that ack would precede sut-a's.
      while (true) {
        const inbound = yield* Queue.take(mallory.inbound).pipe(Effect.timeout("30 seconds"))
        if (inbound._tag !== "Message") continue
        const ack = Protocol.decodeAck(inbound.payload)
        assert.strictEqual(Option.getOrThrow(ack).client_id, "sut-a", "a rogue id was acknowledged")
        break
      }
      const summary = yield* operator.runPipelines([{ name: "p", steps: ["echo enrolled"] }])
      assert.deepStrictEqual(
        summary.steps.map((s) => [s.agent, s.state, s.response?.output]),
        [["sut-a", "succeeded", "enrolled\n"]]
      )
    }).pipe(Effect.provide(layer))
  )

  it.live("in compat mode an agent registers with its raw id, as the original does", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const listener = yield* MqttConnection.make({ ...connectionOf(broker), clientId: "listener" })
      yield* listener.awaitConnected("10 seconds")
      yield* listener.subscribe([topics.registration])
      const operator = yield* startOperator(broker, { expectAgents: 1, signing: Security.compat })
      yield* startAgents(broker, ["old-style"], { signing: Security.compat })
      assert.deepStrictEqual(yield* operator.awaitRegistrations, ["old-style"])
      while (true) {
        const inbound = yield* Queue.take(listener.inbound).pipe(Effect.timeout("30 seconds"))
        if (inbound._tag !== "Message") continue
        assert.strictEqual(inbound.payload, "old-style")
        break
      }
    }).pipe(Effect.provide(layer))
  )
})
