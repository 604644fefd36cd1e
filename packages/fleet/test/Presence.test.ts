// A restarted (or second) operator finds the agents already running and acknowledged by another: it asks who is
// there, and they answer at once — not at their next periodic registration, here ten minutes away.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { Security } from "../src/index.ts"
import { brokerKinds, startBroker } from "./brokers.ts"
import { layer } from "./helpers.ts"
import { startAgents, startOperator } from "./scenarios.ts"

const ids = ["p1", "p2", "p3"]

describe.each(brokerKinds)("presence on %s", (kind) => {
  for (const mode of ["signed", "compat"] as const) {
    it.live(`a new operator finds three running agents at once (${mode})`, () =>
      Effect.gen(function* () {
        const broker = yield* startBroker(kind)
        const signing = mode === "signed" ? undefined : { signing: Security.compat }
        const first = yield* Scope.make()
        const before = yield* startOperator(broker, { expectAgents: 3, ...signing }).pipe(Scope.provide(first))
        const agents = yield* startAgents(broker, ids, { registrationInterval: "10 minutes", ...signing })
        yield* before.awaitRegistrations
        yield* Effect.forEach(agents, (agent) => agent.awaitAcknowledged.pipe(Effect.timeout("30 seconds")))
        yield* Scope.close(first, Exit.void)
        const after = yield* startOperator(broker, {
          expectAgents: 3,
          firstRegistrationTimeout: "30 seconds",
          registrationTimeout: "30 seconds",
          ...signing
        })
        assert.deepStrictEqual([...(yield* after.awaitRegistrations)].sort(), ids)
        const summary = yield* after.runPipelines([{ name: "p", steps: ["echo found"] }])
        assert.deepStrictEqual(
          summary.steps.map((s) => [s.agent, s.state, s.response?.output]).sort(),
          ids.map((id) => [id, "succeeded", "found\n"])
        )
      }).pipe(Effect.provide(layer))
    )
  }
})
