// Operator and agent logic — step timeouts, the abort policy, real-time mode, registration windows, lost agents —
// on the in-memory MQTT broker (MqttConnection.layerMemory) with the scripted runner of @testbed/commands
// (CommandRunner.layerTest), on TestClock: no broker, no process, no real waiting. The same protocol against real
// brokers and processes is covered by the scenario tests (Aedes, Mosquitto, TLS, lifecycle).
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Command, CommandRunner, ScriptedRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Redacted, Ref, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Agent, MqttConnection, Operator, Security } from "../src/index.ts"
import { secret } from "./scenarios.ts"
import { drive } from "./testClock.ts"

const signing = Security.signed(secret)
const connection = { url: "mqtt://memory" }

const layer = (script: ScriptedRunner.Script) =>
  Layer.mergeAll(
    MqttConnection.layerMemory,
    CommandRunner.CommandRunner.layerTest(script).pipe(Layer.provideMerge(EventBus.EventBus.layer)),
    NodeServices.layer
  )

const script = ScriptedRunner.rules([
  [/sleep (\d+)/, { duration: "20 seconds" }],
  [/echo (.*)$/, { stdout: "echoed\n" }]
])

const agents = (ids: ReadonlyArray<string>, extra: Partial<Agent.AgentOptions> = {}) =>
  Effect.forEach(ids, (id) => Agent.start({ ids: [id], connection, signing, ...extra }))

const operator = (extra: Partial<Operator.OperatorOptions> = {}) =>
  Operator.start({ connection, signing, registrationTimeout: "20 seconds", stepTimeout: "20 seconds", ...extra })

describe("Operator on the in-memory broker (TestClock)", () => {
  it.effect("ends a step at its timeout and reports it timed out; the next step is skipped", () =>
    Effect.gen(function* () {
      const op = yield* operator({ expectAgents: 1, stepTimeout: "1 second" })
      yield* agents(["slow"])
      yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
      const summary = yield* drive(
        yield* Effect.forkChild(op.runPipelines([{ name: "p", steps: ["sleep 20", "echo next"] }]))
      )
      assert.deepStrictEqual(
        summary.steps.map((s) => s.state),
        ["timed_out", "skipped"]
      )
      assert.isTrue(summary.steps[0]!.response?.timed_out)
      const ran = yield* ScriptedRunner.ScriptedRunner.use((runner) => runner.ran)
      // The agent ran it with the step's timeout, which ended it.
      assert.deepStrictEqual(
        ran.map((command) => (command.timeout === undefined ? undefined : Duration.toMillis(command.timeout))),
        [1000]
      )
    }).pipe(Effect.scoped, Effect.provide(layer(script)))
  )

  it.effect("aborts every agent's remaining steps once too many agents failed", () =>
    Effect.gen(function* () {
      const op = yield* operator({ expectAgents: 4, onFailure: "continue", abortAbovePercent: 40 })
      // Two agents refuse the first step at once; the other two are still in it when the abort comes.
      yield* agents(["strict-1", "strict-2"], { allow: ["true"] })
      yield* agents(["open-1", "open-2"])
      yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
      const summary = yield* drive(
        yield* Effect.forkChild(op.runPipelines([{ name: "p", steps: ["sleep 3", "true"] }]))
      )
      assert.isTrue(summary.aborted)
      assert.isFalse(summary.succeeded)
      const state = (agent: string, index: number) =>
        summary.steps.find((s) => s.agent === agent && s.index === index)?.state
      assert.strictEqual(state("strict-1", 0), "refused")
      assert.strictEqual(state("open-1", 0), "succeeded")
      for (const agent of ["open-1", "open-2"]) assert.strictEqual(state(agent, 1), "skipped")
    }).pipe(Effect.scoped, Effect.provide(layer(ScriptedRunner.rules([["sh -c sleep 3", { duration: "3 seconds" }]]))))
  )

  it.effect("real-time mode sends each line to every agent until exit", () =>
    Effect.gen(function* () {
      const op = yield* operator({ expectAgents: 2 })
      yield* agents(["rt-1", "rt-2"])
      yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
      const reports = yield* drive(
        yield* Effect.forkChild(op.realtime(Stream.make("echo first", "  ", "echo second", "EXIT", "echo never")))
      )
      assert.deepStrictEqual(reports.map((r) => `${r.agent} ${r.command} ${r.response?.output}`).sort(), [
        "rt-1 echo first echoed\n",
        "rt-1 echo second echoed\n",
        "rt-2 echo first echoed\n",
        "rt-2 echo second echoed\n"
      ])
    }).pipe(Effect.scoped, Effect.provide(layer(script)))
  )

  it.effect("the registration window waits for the expected agents until its timeout; nobody at all fails", () =>
    Effect.gen(function* () {
      const op = yield* operator({ expectAgents: 2, registrationTimeout: "20 seconds" })
      const [agent] = yield* agents(["only"])
      const registered = yield* Effect.forkChild(op.awaitRegistrations)
      yield* TestClock.adjust("19 seconds")
      assert.isUndefined(registered.pollUnsafe(), "the window stays open for the second agent")
      assert.deepStrictEqual(yield* drive(registered), ["only"])
      yield* drive(yield* Effect.forkChild(agent!.awaitAcknowledged))
      const lonely = yield* Operator.start({
        connection,
        signing: Security.signed(Redacted.make("another fleet")),
        firstRegistrationTimeout: "30 seconds"
      })
      const nobody = yield* drive(yield* Effect.forkChild(Effect.flip(lonely.awaitRegistrations)))
      assert.strictEqual(nobody._tag, "NoAgentsRegistered")
      assert.strictEqual(nobody.message, "no agent registered within 30 s")
    }).pipe(Effect.scoped, Effect.provide(layer(script)))
  )

  it.effect("an agent whose connection dies mid-command is lost after the grace period; its next step is skipped", () =>
    Effect.gen(function* () {
      const op = yield* operator({ expectAgents: 1, lostGrace: "10 seconds" })
      const [agent] = yield* agents(["victim"])
      yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
      const run = yield* Effect.forkChild(op.runPipelines([{ name: "p", steps: ["sleep 20", "echo never"] }]))
      yield* TestClock.adjust("1 second")
      const broker = yield* MqttConnection.MemoryBroker
      yield* broker.drop(agent!.mqttClientId)
      yield* TestClock.adjust("9 seconds")
      assert.isUndefined(run.pollUnsafe(), "lost only once the grace period has passed")
      const summary = yield* drive(run)
      assert.deepStrictEqual(
        summary.steps.map((s) => s.state),
        ["agent_lost", "skipped"]
      )
    }).pipe(Effect.scoped, Effect.provide(layer(script)))
  )

  // One run drives every agent's lane (no fiber per agent and step): each lane still moves on as soon as its own
  // answer comes, never held back by another agent's slow step.
  it.effect(
    "each agent moves through a pipeline at its own pace: a fast agent finishes before a slow one's first step",
    () =>
      Effect.gen(function* () {
        const answered = yield* Ref.make<ReadonlyArray<string>>([])
        const op = yield* operator({
          expectAgents: 2,
          stepTimeout: "60 seconds",
          onResponse: (response) => Ref.update(answered, (all) => [...all, `${response.client_id} ${response.command}`])
        })
        yield* agents(["fast"])
        // The slow agent's first step takes 20 s (the scripted `sleep 20`), its others none.
        yield* agents(["slow"], {
          toCommand: (command, options) => Command.shell(command === "echo a" ? "sleep 20" : command, options)
        })
        yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
        const summary = yield* drive(
          yield* Effect.forkChild(op.runPipelines([{ name: "p", steps: ["echo a", "echo b", "echo c"] }]))
        )
        assert.isTrue(summary.succeeded)
        assert.deepStrictEqual(yield* Ref.get(answered), [
          "fast echo a",
          "fast echo b",
          "fast echo c",
          "slow echo a",
          "slow echo b",
          "slow echo c"
        ])
        // Reports stay per agent, in step order, whatever order the answers came in.
        assert.deepStrictEqual(
          summary.steps.map((s) => `${s.agent} ${s.index} ${s.state}`),
          [
            "fast 0 succeeded",
            "fast 1 succeeded",
            "fast 2 succeeded",
            "slow 0 succeeded",
            "slow 1 succeeded",
            "slow 2 succeeded"
          ]
        )
      }).pipe(Effect.scoped, Effect.provide(layer(script)))
  )

  it.effect("an interrupted run sends no further step", () =>
    Effect.gen(function* () {
      const op = yield* operator({ expectAgents: 1 })
      yield* agents(["only"])
      yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
      const run = yield* Effect.forkChild(op.runPipelines([{ name: "p", steps: ["sleep 2", "echo after"] }]))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(run)
      yield* TestClock.adjust("30 seconds")
      const ran = yield* ScriptedRunner.ScriptedRunner.use((runner) => runner.ran)
      assert.deepStrictEqual(
        ran.map((command) => command.shell),
        ["sleep 2"]
      )
    }).pipe(Effect.scoped, Effect.provide(layer(script)))
  )

  // Steps are settled on the dispatcher's fiber: a bug there must surface as the run's defect, not a run that waits
  // forever (and a dispatcher that no longer reads anything).
  it.effect("a defect while settling a step ends the run with that defect instead of leaving it waiting", () =>
    Effect.gen(function* () {
      const bus = yield* EventBus.EventBus
      const failing = EventBus.EventBus.of({
        ...bus,
        emit: (input) => (input.type === "step.finished" ? Effect.die("settle broke") : bus.emit(input))
      })
      const op = yield* operator({ expectAgents: 1 }).pipe(Effect.provideService(EventBus.EventBus, failing))
      yield* agents(["only"])
      yield* drive(yield* Effect.forkChild(op.awaitRegistrations))
      const exit = yield* drive(
        yield* Effect.forkChild(Effect.exit(op.runPipelines([{ name: "p", steps: ["echo once"] }])))
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(Cause.pretty(exit.cause), "settle broke")
    }).pipe(Effect.scoped, Effect.provide(layer(script)))
  )
})
