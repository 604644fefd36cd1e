// Agents that die or are stopped mid-command (their commands end with them), and a broker restarted mid-pipeline
// (embedded broker).
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Effect, Exit, Fiber, Redacted, Schedule, Scope, Stream } from "effect"
import { Broker, Security } from "../src/index.ts"
import { agentProcess, exitOf, freePort, killGroup, layer, tempDir } from "./helpers.ts"
import { secret, startAgents, startOperator } from "./scenarios.ts"

/** Running (a zombie waiting to be reaped has ended). */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

/** Resolves when the step machine of `entity` reaches `state` (subscribed before the step starts). */
const reached = (entity: string, state: string) =>
  Effect.gen(function* () {
    const bus = yield* EventBus.EventBus
    const events = yield* bus.subscribe
    return events.pipe(
      Stream.filter((e) => e.type === "step.state_changed" && e.entityId === entity && e.data.to === state),
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
          stepTimeout: "60 seconds",
          lostGrace: "1 second"
        })
        const agent = yield* agentProcess(["--broker", broker.url, "--id", "victim", "--compat"])
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
    "ends the running command (its process group) of an agent killed with SIGKILL",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.embedded({ port: 0 })
        const operator = yield* startOperator(broker, { expectAgents: 1, lostGrace: "1 second" })
        const agent = yield* agentProcess(["--broker", broker.url, "--id", "doomed"], {
          TESTBED_FLEET_SECRET: Redacted.value(secret)
        })
        yield* operator.awaitRegistrations
        const dir = yield* tempDir("fleet-doomed-")
        const pidFile = join(dir, "pids")
        // A child in the background and one in the foreground: the whole group must go.
        const run = yield* Effect.forkChild(
          operator.runPipelines([
            { name: "p", steps: [`sleep 60 & echo $! > ${pidFile}.bg; echo $$ > ${pidFile}; exec sleep 60`] }
          ])
        )
        const pids = yield* Effect.sync(() =>
          existsSync(pidFile) && existsSync(`${pidFile}.bg`)
            ? [readFileSync(pidFile, "utf8"), readFileSync(`${pidFile}.bg`, "utf8")].map((t) => Number(t.trim()))
            : []
        ).pipe(
          Effect.repeat({
            until: (p) => p.length === 2 && p.every((n) => n > 0),
            schedule: Schedule.spaced("20 millis")
          }),
          Effect.timeout("30 seconds")
        )
        // Should the test fail, it leaves nothing running behind.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL")
          })
        )
        assert.isTrue(pids.every(alive), "the command runs")
        // The agent process alone, not its process group: nothing of it runs its finalizers.
        agent.kill("SIGKILL")
        yield* exitOf(agent)
        yield* Effect.sync(() => pids.some(alive)).pipe(
          Effect.repeat({ until: (any) => !any, schedule: Schedule.spaced("50 millis") }),
          Effect.timeout("30 seconds")
        )
        const summary = yield* Fiber.join(run)
        assert.deepStrictEqual(
          summary.steps.map((s) => s.state),
          ["agent_lost"]
        )
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
        const agent = yield* agentProcess(["--broker", broker.url, "--id", "polite", "--compat"])
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
