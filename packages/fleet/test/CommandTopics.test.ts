// Native mode's per-agent command topics (issue 17) against compat mode's one shared topic, at the wire of the
// in-memory broker (MqttConnection.layerMemory) with the scripted runner, on TestClock.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { CommandRunner, ScriptedRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Effect, Layer } from "effect"
import { Agent, MqttConnection, Operator, Protocol, Security } from "../src/index.ts"
import { secret } from "./scenarios.ts"
import { drive } from "./testClock.ts"

const connection = { url: "mqtt://memory" }
const topics = Protocol.defaultTopics

const layer = Layer.mergeAll(
  MqttConnection.layerMemory,
  CommandRunner.CommandRunner.layerTest(ScriptedRunner.rules([[/echo/, { stdout: "ok\n" }]])).pipe(
    Layer.provideMerge(EventBus.EventBus.layer)
  ),
  NodeServices.layer
)

/** Runs `echo hi` on the given agents (one connection each) and returns the topics commands went out on. */
const commandTopicsOf = (signing: Security.Signing, ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const op = yield* Operator.start({
      connection,
      signing,
      expectAgents: ids.length,
      registrationTimeout: "5 seconds"
    })
    yield* Effect.forEach(ids, (id) => Agent.start({ ids: [id], connection, signing }))
    yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
    const summary = yield* drive(yield* Effect.forkChild(op.runPipelines([{ name: "p", steps: ["echo hi"] }])))
    assert.isTrue(summary.succeeded, JSON.stringify(summary.counts))
    const published = yield* MqttConnection.MemoryBroker.use((broker) => broker.published)
    return published.filter((m) => m.topic.startsWith(topics.command)).map((m) => m.topic)
  }).pipe(Effect.scoped)

describe("command topics", () => {
  it("a command's own topic sits below the shared one; an id unfit for a topic level has none", () => {
    assert.strictEqual(Protocol.agentCommandTopic(topics, "sut-1"), "system_performance/commands/sut-1")
    for (const id of ["a/b", "a+", "#", "x\u0000y", ""]) assert.isUndefined(Protocol.agentCommandTopic(topics, id))
    assert.strictEqual(Protocol.commandTopicFor(topics, "per-agent", "a/b"), topics.command)
    assert.strictEqual(Protocol.commandTopicFor(topics, "shared", "sut-1"), topics.command)
  })

  it.effect("signed (native) mode sends each agent's command on that agent's own topic only", () =>
    Effect.gen(function* () {
      const sent = yield* commandTopicsOf(Security.signed(secret), ["sut-1", "sut-2"])
      assert.deepStrictEqual([...sent].sort(), [
        "system_performance/commands/sut-1",
        "system_performance/commands/sut-2"
      ])
    }).pipe(Effect.provide(layer))
  )

  it.effect("an agent whose id cannot be a topic level still gets its commands, on the shared topic", () =>
    Effect.gen(function* () {
      const sent = yield* commandTopicsOf(Security.signed(secret), ["lab/sut+1"])
      assert.deepStrictEqual(sent, [topics.command])
    }).pipe(Effect.provide(layer))
  )

  it.effect("compat mode keeps the old protocol's one shared topic", () =>
    Effect.gen(function* () {
      const sent = yield* commandTopicsOf(Security.compat, ["sut-1", "sut-2"])
      assert.deepStrictEqual(sent, [topics.command, topics.command])
    }).pipe(Effect.provide(layer))
  )

  it.effect("a signed operator asked for the shared topic uses it, and agents still listen there", () =>
    Effect.gen(function* () {
      const signing = Security.signed(secret)
      const op = yield* Operator.start({ connection, signing, expectAgents: 1, commandTopics: "shared" })
      yield* Agent.start({ ids: ["sut-1"], connection, signing })
      yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
      const summary = yield* drive(yield* Effect.forkChild(op.runPipelines([{ name: "p", steps: ["echo hi"] }])))
      assert.isTrue(summary.succeeded)
      const published = yield* MqttConnection.MemoryBroker.use((broker) => broker.published)
      assert.deepStrictEqual(
        published.filter((m) => m.topic.startsWith(topics.command)).map((m) => m.topic),
        [topics.command]
      )
    }).pipe(Effect.scoped, Effect.provide(layer))
  )
})
