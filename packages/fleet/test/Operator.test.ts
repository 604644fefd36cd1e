// Operator policies on the embedded broker: step timeouts, abort past a failure percentage, real-time mode.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Broker } from "../src/index.ts"
import { layer } from "./helpers.ts"
import { startAgents, startOperator } from "./scenarios.ts"

describe("Operator", () => {
  it.live("ends a step at its timeout and reports it timed out", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const operator = yield* startOperator(broker, { expectAgents: 1, stepTimeout: "1 second" })
      yield* startAgents(broker, ["slow"])
      yield* operator.awaitRegistrations
      const summary = yield* operator.runPipelines([{ name: "p", steps: ["sleep 20", "echo next"] }])
      assert.deepStrictEqual(
        summary.steps.map((s) => s.state),
        ["timed_out", "skipped"]
      )
      assert.isTrue(summary.steps[0]!.response?.timed_out)
    }).pipe(Effect.provide(layer))
  )

  it.live("aborts every agent's remaining steps once too many agents failed", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const operator = yield* startOperator(broker, { expectAgents: 4, onFailure: "continue", abortAbovePercent: 40 })
      // Two agents refuse the first step at once; the other two are still in it when the abort comes.
      yield* startAgents(broker, ["strict-1", "strict-2"], { allow: ["true"] })
      yield* startAgents(broker, ["open-1", "open-2"])
      yield* operator.awaitRegistrations
      const summary = yield* operator.runPipelines([{ name: "p", steps: ["sleep 3", "true"] }])
      assert.isTrue(summary.aborted)
      assert.isFalse(summary.succeeded)
      const state = (agent: string, index: number) =>
        summary.steps.find((s) => s.agent === agent && s.index === index)?.state
      assert.strictEqual(state("strict-1", 0), "refused")
      assert.strictEqual(state("open-1", 0), "succeeded")
      // The strict agents may start their next step before the second refusal tips the balance; the open
      // agents are still sleeping then, and their next step never runs.
      for (const agent of ["open-1", "open-2"]) assert.strictEqual(state(agent, 1), "skipped")
    }).pipe(Effect.provide(layer))
  )

  it.live("real-time mode sends each line to every agent until exit", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const operator = yield* startOperator(broker, { expectAgents: 2 })
      yield* startAgents(broker, ["rt-1", "rt-2"])
      yield* operator.awaitRegistrations
      const reports = yield* operator.realtime(Stream.make("echo first", "  ", "echo second", "EXIT", "echo never"))
      assert.deepStrictEqual(reports.map((r) => `${r.agent} ${r.response?.output}`).sort(), [
        "rt-1 first\n",
        "rt-1 second\n",
        "rt-2 first\n",
        "rt-2 second\n"
      ])
    }).pipe(Effect.provide(layer))
  )
})
