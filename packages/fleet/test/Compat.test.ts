// Wire compatibility with the original tools (simulated at the MQTT level exactly as sut.py and operator.py
// behave), the command loader and commander, the feedback file, and the events of a run.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Clock, Effect, Logger, Option, Queue, Schedule, Stream } from "effect"
import { Broker, Commander, MqttConnection, Protocol, Security } from "../src/index.ts"
import { layer, tempDir } from "./helpers.ts"
import { connectionOf, secret, startAgents, startOperator } from "./scenarios.ts"

const topics = Protocol.defaultTopics

const take = (connection: MqttConnection.MqttConnection, topic: string) =>
  Effect.gen(function* () {
    while (true) {
      const inbound = yield* Queue.take(connection.inbound)
      if (inbound._tag === "Message" && inbound.topic === topic) return inbound.payload
    }
  }).pipe(Effect.timeout("30 seconds"))

/** sut.py at the wire: registers every 200 ms until acked, answers with the six old fields only. */
const oldAgent = (url: string, id: string) =>
  Effect.gen(function* () {
    const c = yield* MqttConnection.make({ url, clientId: id })
    yield* c.awaitConnected("10 seconds")
    yield* c.subscribe([topics.command, topics.ack], 0)
    let acked = false
    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.suspend(() => (acked ? Effect.void : Effect.ignore(c.publish(topics.registration, id, 0)))),
        Schedule.spaced("200 millis")
      )
    )
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.gen(function* () {
          const inbound = yield* Queue.take(c.inbound)
          if (inbound._tag !== "Message") return
          if (inbound.topic === topics.ack && inbound.payload === id) acked = true
          if (inbound.topic !== topics.command) return
          const data = JSON.parse(inbound.payload) as { client_id: string; command: string }
          if (data.client_id !== id) return
          const feedback = {
            client_id: id,
            command: data.command,
            start_time: "1718000000.5",
            end_time: "1718000001.25",
            output: `old ran: ${data.command}\n`,
            error: "None"
          }
          yield* Effect.ignore(c.publish(topics.response, JSON.stringify(feedback), 0))
        })
      )
    )
  })

describe("compatibility", () => {
  it.live("says at start that compat mode is the old unsigned protocol, in the agent and the operator", () => {
    const logs: Array<string> = []
    const capture = Logger.make<unknown, void>(({ message }) => {
      logs.push(String(Array.isArray(message) ? message.join(" ") : message))
    })
    return Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      yield* startOperator(broker, { signing: Security.compat })
      yield* startAgents(broker, ["old-style"], { signing: Security.compat })
      const warnings = logs.filter((line) => line.includes(Security.compatWarning))
      assert.deepStrictEqual(
        warnings.map((line) => line.split(":")[0]),
        ["operator", "agent"]
      )
    }).pipe(Effect.provide(layer), Effect.provide(Logger.layer([capture])))
  })

  it.live("our operator drives an old agent (compat mode), old fields only", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const operator = yield* startOperator(broker, { expectAgents: 1, signing: Security.compat })
      yield* oldAgent(broker.url, "old1")
      yield* operator.awaitRegistrations
      const summary = yield* operator.runPipelines([{ name: "p", steps: ["uptime", "df -h"] }])
      assert.deepStrictEqual(
        summary.steps.map((s) => [s.state, s.exitCode, s.response?.output]),
        [
          ["succeeded", null, "old ran: uptime\n"],
          ["succeeded", null, "old ran: df -h\n"]
        ]
      )
    }).pipe(Effect.provide(layer))
  )

  it.live("acknowledges every registration, not only the first (a lost ack no longer strands an agent)", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      yield* startOperator(broker, { signing: Security.compat })
      const agent = yield* MqttConnection.make({ url: broker.url, clientId: "forgetful" })
      yield* agent.awaitConnected("10 seconds")
      yield* agent.subscribe([topics.ack])
      yield* agent.publish(topics.registration, "forgetful")
      assert.strictEqual(yield* take(agent, topics.ack), "forgetful")
      yield* agent.publish(topics.registration, "forgetful")
      assert.strictEqual(yield* take(agent, topics.ack), "forgetful")
    }).pipe(Effect.provide(layer))
  )

  it.live("our agent (compat mode) answers an old operator in the old format, plus the exit code", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const old = yield* MqttConnection.make({ url: broker.url, clientId: "old-operator" })
      yield* old.awaitConnected("10 seconds")
      yield* old.subscribe([topics.registration, topics.response], 0)
      yield* startAgents(broker, ["new1"], { signing: Security.compat })
      assert.strictEqual(yield* take(old, topics.registration), "new1")
      yield* old.publish(topics.ack, "new1", 0)
      yield* old.publish(
        topics.command,
        JSON.stringify({ client_id: "new1", command: "echo hi; echo oops >&2; exit 4" }),
        0
      )
      const answer = JSON.parse(yield* take(old, topics.response)) as Record<string, unknown>
      assert.strictEqual(answer.client_id, "new1")
      assert.strictEqual(answer.command, "echo hi; echo oops >&2; exit 4")
      assert.strictEqual(answer.output, "hi\n")
      assert.strictEqual(answer.error, "oops\n")
      assert.isTrue(Number.isFinite(Number(answer.start_time)) && typeof answer.start_time === "string")
      assert.isAtLeast(Number(answer.end_time), Number(answer.start_time))
      assert.strictEqual(answer.exit_code, 4)
      assert.strictEqual(answer.status, "failed")
    }).pipe(Effect.provide(layer))
  )

  it.live("forwards signed command-loader messages, refuses unsigned ones, and the commander collects answers", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const operator = yield* startOperator(broker, { expectAgents: 2 })
      yield* startAgents(broker, ["c1", "c2"])
      yield* operator.awaitRegistrations
      const raw = yield* MqttConnection.make({ url: broker.url, clientId: "loader" })
      yield* raw.awaitConnected("10 seconds")
      const now = yield* Clock.currentTimeMillis
      yield* raw.publish(topics.commandLoader, JSON.stringify({ client_id: "all", command: "echo unsigned" }))
      const signed = Security.signLoader(
        Security.signed(secret),
        { client_id: "ALL", command: "echo signed" },
        "l-1",
        now
      )
      yield* raw.publish(topics.commandLoader, JSON.stringify(signed))
      const reports = yield* Effect.repeat(operator.loaderReports, {
        until: (r) => r.length >= 2,
        schedule: Schedule.spaced("20 millis")
      }).pipe(Effect.timeout("30 seconds"))
      assert.deepStrictEqual(reports.map((r) => [r.command, r.state]).sort(), [
        ["echo signed", "succeeded"],
        ["echo signed", "succeeded"]
      ])
      const sent = yield* Commander.send({
        connection: connectionOf(broker),
        signing: Security.signed(secret),
        to: "c2",
        command: "echo from commander"
      })
      assert.isTrue(sent.complete)
      assert.deepStrictEqual(
        sent.responses.map((r) => [r.client_id, r.output]),
        [["c2", "from commander\n"]]
      )
      const all = yield* Commander.send({
        connection: connectionOf(broker),
        signing: Security.signed(secret),
        to: "all",
        expect: 2,
        command: "echo everyone"
      })
      assert.deepStrictEqual(all.responses.map((r) => r.client_id).sort(), ["c1", "c2"])
      assert.strictEqual((yield* operator.loaderReports).filter((r) => r.command === "echo unsigned").length, 0)
    }).pipe(Effect.provide(layer))
  )

  it.live("writes the feedback file (JSONL the old parser reads) and emits every step on the bus", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const feedbackFile = join(yield* tempDir("fleet-feedback-"), "feedback.txt")
      const bus = yield* EventBus.EventBus
      const events = yield* bus.subscribe
      const operator = yield* startOperator(broker, { expectAgents: 1, feedbackFile })
      yield* startAgents(broker, ["f1"], { runningNoticeAfter: 0 })
      yield* operator.awaitRegistrations
      const summary = yield* operator.runPipelines([{ name: "p", steps: ["echo one", "echo two"] }])
      assert.isTrue(summary.succeeded)
      const lines = readFileSync(feedbackFile, "utf8").trim().split("\n")
      assert.strictEqual(lines.length, 2)
      for (const line of lines) {
        const entry = JSON.parse(line) as Record<string, unknown>
        for (const key of ["client_id", "command", "start_time", "end_time", "output", "error"])
          assert.property(entry, key)
        assert.notInclude(line, "signature")
      }
      const seen = yield* events.pipe(
        Stream.filter((e) => e.type.startsWith("step.") || e.type.startsWith("agent.")),
        Stream.takeUntil((e) => e.type === "step.finished" && e.data.index === 1),
        Stream.runCollect
      )
      const types = seen.map((e) => e.type)
      assert.include(types, "agent.registered")
      assert.strictEqual(types.filter((t) => t === "step.started").length, 2)
      assert.strictEqual(types.filter((t) => t === "step.finished").length, 2)
      const moves = seen.flatMap((e) => (e.type === "step.state_changed" && e.entityId === "p/f1/0" ? [e.data.to] : []))
      assert.deepStrictEqual(moves, ["sent", "running", "succeeded"])
      assert.isTrue(Option.isSome(Option.fromNullishOr(summary.steps[0]?.response)))
    }).pipe(Effect.provide(layer))
  )
})
