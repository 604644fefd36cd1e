// Agents that die or are stopped mid-command, and a broker restarted mid-pipeline (embedded broker).
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Effect, Exit, Fiber, Schedule, Scope, Stream } from "effect"
import { Broker, Security } from "../src/index.ts"
import { exitOf, freePort, killGroup, layer, testbed } from "./helpers.ts"
import { startAgents, startOperator } from "./scenarios.ts"

/** Resolves when the step machine of `entity` reaches `state` (subscribed before the step starts). */
const reached = (entity: string, state: string) =>
  Effect.gen(function* () {
    const bus = yield* EventBus.EventBus
    const events = yield* bus.subscribe
    return events.pipe(
      Stream.filter(
        (e) => e.type === "step.state_changed" && e.entityId === entity && (e.data as { to?: string }).to === state
      ),
      Stream.take(1),
      Stream.runDrain
    )
  })

const eventually = <A>(effect: Effect.Effect<A>, until: (a: A) => boolean) =>
  Effect.repeat(effect, { until, schedule: Schedule.spaced("20 millis") }).pipe(Effect.timeout("60 seconds"))

describe("fleet lifecycle", () => {
  it.live(
    "reports an agent killed mid-command as lost",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.embedded({ port: 0 })
        const operator = yield* startOperator(broker, {
          expectAgents: 1,
          signing: Security.compat,
          stepTimeout: "60 seconds"
        })
        const agent = yield* testbed(["fleet", "agent", "--broker", broker.url, "--id", "victim", "--compat"])
        yield* operator.awaitRegistrations
        const running = yield* reached("p/victim/0", "running")
        const run = yield* Effect.forkChild(operator.runPipelines([{ name: "p", steps: ["sleep 30", "echo never"] }]))
        yield* running
        killGroup(agent, "SIGKILL")
        const summary = yield* Fiber.join(run)
        assert.deepStrictEqual(
          summary.steps.map((s) => s.state),
          ["agent_lost", "skipped"]
        )
        assert.isFalse(summary.succeeded)
      }).pipe(Effect.provide(layer)),
    90_000
  )

  it.live(
    "stops an agent on SIGTERM, ending and reporting its running command",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.embedded({ port: 0 })
        const operator = yield* startOperator(broker, {
          expectAgents: 1,
          signing: Security.compat,
          stepTimeout: "60 seconds"
        })
        const agent = yield* testbed(["fleet", "agent", "--broker", broker.url, "--id", "polite", "--compat"])
        yield* operator.awaitRegistrations
        const running = yield* reached("p/polite/0", "running")
        const run = yield* Effect.forkChild(operator.runPipelines([{ name: "p", steps: ["sleep 30"] }]))
        yield* running
        agent.kill("SIGTERM")
        const summary = yield* Fiber.join(run)
        const step = summary.steps[0]!
        assert.strictEqual(step.state, "agent_lost")
        assert.strictEqual(step.response?.status, "interrupted")
        assert.isTrue((yield* exitOf(agent)) !== null || agent.signalCode !== null)
      }).pipe(Effect.provide(layer)),
    90_000
  )

  it.live(
    "loses no answer when the broker restarts in the middle of a pipeline",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const brokerScope = yield* Scope.make()
        const broker = yield* Broker.embedded({ port }).pipe(Scope.provide(brokerScope))
        const operator = yield* startOperator(broker, { expectAgents: 3 })
        const agents = yield* startAgents(broker, ["r1", "r2", "r3"])
        yield* operator.awaitRegistrations
        const running = yield* Effect.forEach(["r1", "r2", "r3"], (id) => reached(`p/${id}/0`, "running"))
        const run = yield* Effect.forkChild(
          operator.runPipelines([{ name: "p", steps: ["sleep 1; echo slept", "echo after"] }])
        )
        yield* Effect.all(running, { concurrency: "unbounded" })
        yield* Scope.close(brokerScope, Exit.void)
        // Every agent finishes its command (and tries to answer) while the broker is away.
        yield* Effect.forEach(agents, (agent) => eventually(agent.stats, (s) => s.executed >= 1))
        const restarted = yield* Scope.make()
        yield* Broker.embedded({ port }).pipe(Scope.provide(restarted))
        yield* Effect.addFinalizer(() => Scope.close(restarted, Exit.void))
        const summary = yield* Fiber.join(run)
        assert.deepStrictEqual(
          summary.steps.map((s) => s.state),
          ["succeeded", "succeeded", "succeeded", "succeeded", "succeeded", "succeeded"]
        )
        for (const step of summary.steps.filter((s) => s.index === 0))
          assert.strictEqual(step.response?.output, "slept\n")
        for (const agent of agents) assert.strictEqual((yield* agent.stats).executed, 2)
      }).pipe(Effect.provide(layer)),
    90_000
  )
})
