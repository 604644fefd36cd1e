// A broker restarted in the middle of a pipeline loses no answer, whether it went down with SIGTERM (Mosquitto
// then publishes every agent's will: the operator hears them reported gone) or SIGKILL (no wills); and an agent
// reported gone by its will that comes back within the grace period fails nothing.
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Effect, Fiber, Schedule, Stream } from "effect"
import { brokerKinds, startBroker } from "./brokers.ts"
import { layer, tcpProxy, tempDir } from "./helpers.ts"
import { startAgents, startOperator } from "./scenarios.ts"

const eventually = <A>(effect: Effect.Effect<A>, until: (a: A) => boolean) =>
  Effect.repeat(effect, { until, schedule: Schedule.spaced("20 millis") }).pipe(Effect.timeout("60 seconds"))

const ids = ["r1", "r2", "r3"]

describe.each(brokerKinds)("a restart of %s", (kind) => {
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it.live(
      `with ${signal} mid-pipeline, three agents: no answer lost`,
      () =>
        Effect.gen(function* () {
          const broker = yield* startBroker(kind)
          const bus = yield* EventBus.EventBus
          const events = yield* bus.subscribe
          const seen: Array<{ readonly type: string; readonly to?: string }> = []
          yield* Effect.forkScoped(
            Stream.runForEach(events, (e) =>
              Effect.sync(() => seen.push(e.type === "step.state_changed" ? { type: e.type, to: e.data.to } : e))
            )
          )
          const operator = yield* startOperator(broker, { expectAgents: 3, lostGrace: "30 seconds" })
          const agents = yield* startAgents(broker, ids)
          yield* operator.awaitRegistrations
          const run = yield* Effect.forkChild(
            operator.runPipelines([{ name: "p", steps: ["sleep 1; echo slept", "echo after"] }])
          )
          yield* eventually(
            Effect.sync(() => seen.filter((e) => e.type === "step.state_changed" && e.to === "running").length),
            (n) => n >= 3
          )
          yield* broker.stop(signal)
          // Every agent finishes its command (and tries to answer) while the broker is away.
          yield* Effect.forEach(agents, (agent) => eventually(agent.stats, (s) => s.executed >= 1))
          yield* broker.start
          const summary = yield* Fiber.join(run)
          assert.deepStrictEqual(
            // Agents that came back re-register in any order: compare per agent and step.
            summary.steps
              .map((s) => [s.agent, s.index, s.state, s.response?.output] as const)
              .toSorted((a, b) => a[0].localeCompare(b[0]) || a[1] - b[1]),
            ids.flatMap((id) => [
              [id, 0, "succeeded", "slept\n"],
              [id, 1, "succeeded", "after\n"]
            ])
          )
          for (const agent of agents) assert.strictEqual((yield* agent.stats).executed, 2)
          // Mosquitto publishes the wills on SIGTERM, but closes the operator's connection somewhere in between: how
          // many it hears varies. Each agent reported gone must have been seen back (the Proxy test makes it certain).
          const disconnected = seen.filter((e) => e.type === "agent.disconnected").length
          const reconnected = seen.filter((e) => e.type === "agent.reconnected").length
          assert.strictEqual(reconnected, disconnected)
          assert.strictEqual(seen.filter((e) => e.type === "agent.lost").length, 0)
        }).pipe(Effect.provide(layer)),
      90_000
    )
  }
})

describe.each(brokerKinds)("an agent's connection dropping on %s", (kind) => {
  it.live(
    "reported gone by its will, back within the grace period: its step still succeeds",
    () =>
      Effect.gen(function* () {
        const broker = yield* startBroker(kind)
        const proxy = yield* tcpProxy(Number(new URL(broker.url).port))
        const throughProxy = { ...broker, url: broker.url.replace(/:\d+$/, `:${proxy.port}`) }
        const bus = yield* EventBus.EventBus
        const events = yield* bus.subscribe
        const agentEvents = yield* Effect.forkChild(
          events.pipe(
            Stream.filter((e) => e.type === "agent.disconnected" || e.type === "agent.reconnected"),
            Stream.map((e) => e.type),
            Stream.take(2),
            Stream.runCollect,
            Effect.timeout("30 seconds")
          )
        )
        // A subscription of its own: two consumers of one subscription share its events (whichever takes first).
        const running = (yield* bus.subscribe).pipe(
          Stream.filter((e) => e.type === "step.state_changed" && e.data.to === "running"),
          Stream.take(1),
          Stream.runDrain
        )
        const operator = yield* startOperator(broker, { expectAgents: 1, lostGrace: "30 seconds" })
        yield* startAgents(throughProxy, ["hop"], { runningNoticeAfter: 0 })
        yield* operator.awaitRegistrations
        const dir = yield* tempDir("fleet-hop-")
        const go = join(dir, "go")
        const run = yield* Effect.forkChild(
          operator.runPipelines([{ name: "p", steps: [`while [ ! -e ${go} ]; do sleep 0.05; done; echo done`] }])
        )
        yield* running
        yield* proxy.cut
        assert.deepStrictEqual(yield* Fiber.join(agentEvents), ["agent.disconnected", "agent.reconnected"])
        writeFileSync(go, "")
        const summary = yield* Fiber.join(run)
        assert.deepStrictEqual(
          summary.steps.map((s) => [s.state, s.response?.output]),
          [["succeeded", "done\n"]]
        )
      }).pipe(Effect.provide(layer)),
    60_000
  )
})
