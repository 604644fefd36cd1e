// Scenarios run against every broker (embedded Aedes and a real Mosquitto): the same assertions for both.
import { assert } from "@effect/vitest"
import { type CommandRunner, LocalRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Effect, type FileSystem, Redacted, type Scope } from "effect"
import { Agent, type MqttConnection, Operator, type Protocol, Security } from "../src/index.ts"

export interface BrokerAccess {
  readonly url: string
  readonly username?: string
  readonly password?: Redacted.Redacted<string>
  readonly tls?: MqttConnection.Tls
}

export const connectionOf = (broker: BrokerAccess) => ({
  url: broker.url,
  reconnectPeriod: "100 millis" as const,
  ...(broker.username !== undefined ? { username: broker.username } : {}),
  ...(broker.password !== undefined ? { password: broker.password } : {}),
  ...(broker.tls !== undefined ? { tls: broker.tls } : {})
})

export const secret = Redacted.make("correct horse battery staple")

type Env = Scope.Scope | EventBus.EventBus | FileSystem.FileSystem | CommandRunner.CommandRunner

export const startAgents = (
  broker: BrokerAccess,
  ids: ReadonlyArray<string>,
  extra: Partial<Agent.AgentOptions> = {}
): Effect.Effect<ReadonlyArray<Agent.Agent>, unknown, Env> =>
  Effect.forEach(ids, (id) =>
    Agent.start({
      ids: [id],
      connection: connectionOf(broker),
      signing: Security.signed(secret),
      registrationInterval: "200 millis",
      ...extra
    })
  )

export const startOperator = (
  broker: BrokerAccess,
  extra: Partial<Operator.OperatorOptions> = {}
): Effect.Effect<Operator.Operator, unknown, Env> =>
  Operator.start({
    connection: connectionOf(broker),
    signing: Security.signed(secret),
    registrationTimeout: "20 seconds",
    stepTimeout: "20 seconds",
    ...extra
  })

/** Registration and ack, then two pipelines on three agents; checks every step's answer. */
export const twoPipelinesOnThreeAgents = (
  broker: BrokerAccess,
  mode: Protocol.Mode,
  operatorExtra: Partial<Operator.OperatorOptions> = {}
) =>
  Effect.gen(function* () {
    const signing = mode === "json" ? Security.signed(secret) : Security.compat
    const operator = yield* startOperator(broker, { expectAgents: 3, mode, signing, ...operatorExtra })
    const agents = yield* startAgents(broker, ["sut-a", "sut-b", "sut-c"], { mode, signing })
    const registered = yield* operator.awaitRegistrations
    assert.deepStrictEqual([...registered].sort(), ["sut-a", "sut-b", "sut-c"])
    yield* Effect.forEach(agents, (agent) => agent.awaitAcknowledged)
    const summary = yield* operator.runPipelines([
      { name: "pipeline1", steps: ["echo one", "printf 'a;b'"] },
      { name: "pipeline2", steps: ["echo $((6 * 7))", "sh -c 'echo err >&2; exit 3'"] }
    ])
    assert.strictEqual(summary.steps.length, 12)
    for (const step of summary.steps) assert.isDefined(step.response, `${step.pipeline} ${step.agent} ${step.index}`)
    const on = (pipeline: string, index: number) =>
      summary.steps.filter((s) => s.pipeline === pipeline && s.index === index)
    for (const s of on("pipeline1", 0)) assert.strictEqual(s.response?.output, "one\n")
    for (const s of on("pipeline1", 1)) assert.strictEqual(s.response?.output, "a;b")
    for (const s of on("pipeline2", 0)) assert.strictEqual(s.response?.output, "42\n")
    for (const s of on("pipeline2", 1)) {
      assert.strictEqual(s.state, "failed")
      assert.strictEqual(s.exitCode, 3)
      assert.strictEqual(s.response?.error, "err\n")
    }
    assert.strictEqual(summary.counts.succeeded, 9)
    assert.strictEqual(summary.counts.failed, 3)
    assert.isFalse(summary.succeeded)
  })

export const localRunner = LocalRunner.layer
export { EventBus }
