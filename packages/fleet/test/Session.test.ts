// The operator's session from the CLI: `exit` in real-time mode ends the process even though stdin stays open
// (a terminal, or a pipe nobody closes).
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Schedule } from "effect"
import { Broker } from "../src/index.ts"
import { exitOf, layer, outputOf, testbed } from "./helpers.ts"
import { secret, startAgents } from "./scenarios.ts"

describe("testbed fleet operator", () => {
  it.live(
    "ends at `exit` in real-time mode while stdin stays open",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.embedded({ port: 0 })
        yield* startAgents(broker, ["rt"])
        const operator = yield* testbed(
          ["fleet", "operator", "--broker", broker.url, "--expect", "1", "--no-feedback", "--pipeline", "echo piped"],
          { TESTBED_FLEET_SECRET: Redacted.value(secret) }
        )
        const output = outputOf(operator)
        yield* Effect.sync(() => output.text().includes("real-time mode")).pipe(
          Effect.repeat({ until: (ready) => ready, schedule: Schedule.spaced("20 millis") }),
          Effect.timeout("60 seconds")
        )
        // Written, never ended: the pipe stays open as a terminal would.
        operator.stdin!.write("echo live\nexit\n")
        const code = yield* exitOf(operator).pipe(Effect.timeout("60 seconds"))
        assert.strictEqual(code, 0, output.text())
        assert.include(output.text(), "rt: echo live -> succeeded")
        assert.include(output.text(), "all steps succeeded")
        assert.isFalse(operator.stdin!.writableEnded)
      }).pipe(Effect.provide(layer)),
    90_000
  )
})
