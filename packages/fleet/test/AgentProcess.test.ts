// The agent as a process of its own (what this package's process tests start, and any harness may): its arguments
// decoded at the edge, a wrong one named.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ExitCode } from "@testbed/events"
import { AgentProcess } from "../src/index.ts"

describe("AgentProcess.parse", () => {
  it.effect("decodes --flag value, switches and repeatable flags", () =>
    Effect.gen(function* () {
      const args = yield* AgentProcess.parse([
        ...["--broker", "mqtt://127.0.0.1:1883", "--id", "a1", "--compat"],
        ...["--pass-env", "LC_*", "--pass-env", "PATH", "--secret-file", "s", "--insecure"]
      ])
      assert.deepStrictEqual(args, {
        broker: "mqtt://127.0.0.1:1883",
        id: "a1",
        compat: true,
        "pass-env": ["LC_*", "PATH"],
        "secret-file": "s",
        insecure: true
      })
      assert.deepStrictEqual(yield* AgentProcess.parse([]), {})
    })
  )

  it.effect("refuses unknown, repeated, valueless flags and stray words, saying which (exit 2)", () =>
    Effect.gen(function* () {
      const error = (argv: ReadonlyArray<string>) => Effect.flip(AgentProcess.parse(argv))
      assert.include((yield* error(["--brokr", "x"])).reason, "brokr")
      assert.include((yield* error(["--id", "a", "--id", "b"])).reason, "--id is given twice")
      assert.include((yield* error(["--broker"])).reason, "--broker needs a value")
      assert.include((yield* error(["a1"])).reason, 'expected --FLAG VALUE, got "a1"')
      assert.strictEqual(ExitCode.ofError(yield* error(["a1"])), ExitCode.usage)
    })
  )
})
