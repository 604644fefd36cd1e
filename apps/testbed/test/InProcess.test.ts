// The command tree run in this process (Command.runWith through Cli.run) with a test console: what a command
// prints and how it fails, without the cost of a child process. What only a process shows (exit codes as the
// shell sees them, signals, stderr of a crash) stays in the tests that spawn bin.ts.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { TestConsole } from "effect/testing"
import { run } from "../src/Cli.ts"
import { ExitWith } from "../src/ExitCode.ts"

const fixtures = decodeURIComponent(new URL("../../../fixtures/experiments/", import.meta.url).pathname)

/** Runs `testbed ARGV` here: its exit, and the lines it logged and wrote to stderr. */
const testbed = (...argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(run(argv))
    const out = (yield* TestConsole.logLines).map(String)
    const err = (yield* TestConsole.errorLines).map(String)
    return { exit, out, err }
  }).pipe(Effect.provide([TestConsole.layer, NodeServices.layer]))

describe("testbed in process", () => {
  it.live("schema plugin prints the plugin JSON Schema", () =>
    Effect.gen(function* () {
      const { exit, out } = yield* testbed("schema", "plugin")
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(JSON.parse(out.join("\n")).title, "testbed service plugin")
    })
  )

  it.live("plugins list --json lists the builtins", () =>
    Effect.gen(function* () {
      const { exit, out } = yield* testbed("plugins", "list", "--json")
      assert.isTrue(Exit.isSuccess(exit))
      const names = JSON.parse(out.join("\n")).services.map((s: { name: string }) => s.name)
      assert.includeMembers(names, ["node-echo", "openssl", "gnutls", "exec"])
    })
  )

  it.live("run --dry-run --json of a broken file: the problems as JSON, ExitWith 2, the text on stderr", () =>
    Effect.gen(function* () {
      const { exit, out, err } = yield* testbed("run", `${fixtures}cases/invalid.yaml`, "--dry-run", "--json")
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
        assert.instanceOf(failure?._tag === "Fail" ? failure.error : undefined, ExitWith)
        assert.strictEqual(failure?._tag === "Fail" ? (failure.error as ExitWith).code : undefined, 2)
      }
      const report = JSON.parse(out.join("\n"))
      assert.strictEqual(report.problems.length, 10)
      assert.include(err.join("\n"), "invalid.yaml:6:14: tests[0].timeout: not a duration")
    })
  )
})
