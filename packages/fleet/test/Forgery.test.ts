// In signed mode nothing unsigned (or signed with another secret, or re-targeted) changes what a peer believes:
// forged answers, running notices and lost notices are refused by the operator, forged acks by the agent, a
// command whose timeout was changed by the agent — each reported, on every broker.
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { EventBus, type TestbedEvent } from "@testbed/events"
import { Clock, Effect, Fiber, Option, Queue, Redacted, Stream } from "effect"
import { MqttConnection, Protocol, Security } from "../src/index.ts"
import { brokerKinds, startBroker } from "./brokers.ts"
import { layer, tempDir } from "./helpers.ts"
import { connectionOf, secret, startAgents, startOperator } from "./scenarios.ts"

const topics = Protocol.defaultTopics
const guessed = Security.signed(Redacted.make("a guessed secret"))

/** The next message on `topic` that `pick` accepts. */
const next = <A>(connection: MqttConnection.MqttConnection, topic: string, pick: (payload: string) => A | undefined) =>
  Effect.gen(function* () {
    while (true) {
      const inbound = yield* Queue.take(connection.inbound)
      if (inbound._tag !== "Message" || inbound.topic !== topic) continue
      const picked = pick(inbound.payload)
      if (picked !== undefined) return picked
    }
  }).pipe(Effect.timeout("30 seconds"))

/** The first `n` events of `type`, collected from now on. */
const collect = <T extends TestbedEvent.TestbedEventType>(type: T, n: number) =>
  Effect.gen(function* () {
    const bus = yield* EventBus.EventBus
    const events = yield* bus.subscribe
    return yield* Effect.forkChild(
      events.pipe(
        Stream.filter((e): e is TestbedEvent.EventOf<T> => e.type === type),
        Stream.take(n),
        Stream.runCollect,
        Effect.timeout("30 seconds")
      )
    )
  })

describe.each(brokerKinds)("forgeries on %s", (kind) => {
  it.live(
    "the operator refuses forged answers, running notices and lost notices; the agent a changed timeout",
    () =>
      Effect.gen(function* () {
        const broker = yield* startBroker(kind)
        const dir = yield* tempDir("fleet-forgery-")
        const feedbackFile = join(dir, "feedback.jsonl")
        const operator = yield* startOperator(broker, { expectAgents: 1, feedbackFile, lostGrace: "60 seconds" })
        const [agent] = yield* startAgents(broker, ["sut-a"], { runningNoticeAfter: 0 })
        yield* operator.awaitRegistrations
        const mallory = yield* MqttConnection.make({ ...connectionOf(broker), clientId: "mallory" })
        yield* mallory.awaitConnected("10 seconds")
        // Native mode: the agent's commands go on its own topic, which anyone on the broker can read and write too.
        const agentTopic = Protocol.agentCommandTopic(topics, "sut-a")!
        yield* mallory.subscribe([agentTopic, topics.response])
        // A genuine answer, signed by the agent, to re-target later.
        const [warmup] = yield* operator.runCommand("echo warmup")
        const genuine = warmup!.response!
        const refusals = yield* collect("agent.message_refused", 6)
        const commandRefused = yield* collect("agent.command_refused", 1)
        // The command waits for the test, so every forgery arrives while its step is still open.
        const go = join(dir, "go")
        const run = yield* Effect.forkChild(
          operator.runPipelines([{ name: "p", steps: [`while [ ! -e ${go} ]; do sleep 0.05; done; echo real`] }])
        )
        const command = yield* next(mallory, agentTopic, (payload) =>
          Option.getOrUndefined(
            Option.filter(Protocol.decodeCommand("json", payload), (c) => c.command.endsWith("real"))
          )
        )
        const commandId = command.command_id!
        const now = yield* Clock.currentTimeMillis
        const forgedAnswer: Protocol.ResponseMessage = {
          client_id: "sut-a",
          command: command.command,
          command_id: commandId,
          start_time: Protocol.epochSeconds(now),
          end_time: Protocol.epochSeconds(now),
          output: "mallory was here\n",
          error: "None",
          exit_code: 0,
          status: "succeeded"
        }
        const say = (topic: string, payload: unknown) => mallory.publish(topic, JSON.stringify(payload))
        yield* say(topics.response, forgedAnswer)
        yield* say(topics.response, Security.signResponse(guessed, forgedAnswer))
        yield* say(topics.response, { ...genuine, command_id: commandId })
        yield* say(Protocol.runningTopic(topics), {
          client_id: "sut-a",
          command_id: commandId,
          command: command.command,
          start_time: Protocol.epochSeconds(now)
        })
        yield* say(Protocol.lostTopic(topics), { client_ids: ["sut-a"] })
        yield* mallory.publish(Protocol.lostTopic(topics), Security.lostPayload(guessed, ["sut-a"], agent!.session))
        yield* say(agentTopic, { ...command, timeout: 100_000 })
        const refused = yield* Fiber.join(refusals)
        assert.deepStrictEqual(
          refused.map((e) => [e.data.kind, e.data.reason]),
          [
            ["response", "unsigned"],
            ["response", "forged"],
            ["response", "forged"],
            ["running notice", "unsigned"],
            ["lost notice", "unsigned"],
            ["lost notice", "forged"]
          ]
        )
        const [agentRefusal] = yield* Fiber.join(commandRefused)
        assert.match(agentRefusal!.data.reason, /^forged/)
        writeFileSync(go, "")
        const summary = yield* Fiber.join(run)
        assert.deepStrictEqual(
          summary.steps.map((s) => [s.state, s.response?.output]),
          [["succeeded", "real\n"]]
        )
        assert.notInclude(readFileSync(feedbackFile, "utf8"), "mallory was here")
        assert.strictEqual((yield* agent!.stats).executed, 2)
      }).pipe(Effect.provide(layer)),
    60_000
  )

  it.live("an agent takes no ack but one signed for its own session, and keeps registering until then", () =>
    Effect.gen(function* () {
      const broker = yield* startBroker(kind)
      const mallory = yield* MqttConnection.make({ ...connectionOf(broker), clientId: "mallory" })
      yield* mallory.awaitConnected("10 seconds")
      yield* mallory.subscribe([topics.registration])
      const refusals = yield* collect("agent.message_refused", 3)
      const [agent] = yield* startAgents(broker, ["sut-a"])
      const registration = (payload: string) => Option.getOrUndefined(Protocol.decodeRegistration(payload))
      const first = yield* next(mallory, topics.registration, registration)
      yield* mallory.publish(topics.ack, "sut-a")
      yield* mallory.publish(topics.ack, Security.ackPayload(guessed, "sut-a", first.session))
      // A genuine ack of another session (an earlier run of this agent id), replayed.
      yield* mallory.publish(topics.ack, Security.ackPayload(Security.signed(secret), "sut-a", "old-session"))
      const refused = yield* Fiber.join(refusals)
      assert.deepStrictEqual(
        refused.map((e) => [e.data.kind, e.data.reason]),
        [
          ["ack", "unsigned"],
          ["ack", "forged"],
          ["ack", "forged"]
        ]
      )
      // Still not acknowledged: it registers again (every 200 ms here), then takes the real operator's ack.
      yield* next(mallory, topics.registration, registration)
      yield* next(mallory, topics.registration, registration)
      yield* startOperator(broker, { expectAgents: 1 })
      yield* agent!.awaitAcknowledged.pipe(Effect.timeout("30 seconds"))
    }).pipe(Effect.provide(layer))
  )
})
