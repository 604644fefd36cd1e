// Exit codes come from the error classes; a failure is one line on stderr, with the trace only under --debug.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ExitCode, WriteFailed } from "@testbed/events"
import { StageError } from "@testbed/stages"
import { Cause, Effect } from "effect"
import { CliError } from "effect/cli"
import { debugRequested, ending, ExitWith } from "../src/ExitCode.ts"
import { testbed } from "./support.ts"

const stackTrace = /\n\s+at .+:\d+:\d+/

describe("exit codes", () => {
  it("an expected error is one line with the code its class carries; --debug adds the cause", () => {
    const full = new WriteFailed.WriteFailed({ path: "/run/events.jsonl", code: "ENOSPC", reason: "no space left" })
    assert.deepStrictEqual(ending(Cause.fail(full), false), {
      code: ExitCode.infrastructure,
      lines: ["testbed: cannot write /run/events.jsonl: no space left (ENOSPC)"]
    })
    const busy = ending(
      Cause.fail(
        new StageError.StageBusy({
          stateDir: ".testbed",
          operation: "up",
          pid: 42,
          host: null,
          since: null,
          waitedMs: 1000
        })
      ),
      false
    )
    assert.strictEqual(busy.code, ExitCode.busy)
    const debug = ending(Cause.fail(full), true)
    assert.strictEqual(debug.lines.length, 2)
    assert.match(debug.lines[1]!, /WriteFailed/)
  })

  it("ExitWith says its message (or nothing); a usage error of the CLI is 2; a defect keeps its trace", () => {
    assert.deepStrictEqual(ending(Cause.fail(new ExitWith({ code: 7 })), false), { code: 7, lines: [] })
    assert.deepStrictEqual(ending(Cause.fail(new ExitWith({ code: 1, message: "no" })), false), {
      code: 1,
      lines: ["no"]
    })
    const usage = new CliError.ShowHelp({
      commandPath: ["testbed"],
      errors: [new CliError.UnrecognizedOption({ option: "--bogus", suggestions: [], command: ["testbed"] })]
    })
    assert.deepStrictEqual(ending(Cause.fail(usage), false), { code: ExitCode.usage, lines: [] })
    const bug = ending(Cause.die(new Error("a bug")), false)
    assert.strictEqual(bug.code, 1)
    assert.match(bug.lines[0]!, /a bug/)
  })

  it("--debug counts only before --", () => {
    assert.isTrue(debugRequested(["run", "x.yaml", "--debug"]))
    assert.isFalse(debugRequested(["replay", "test", "-i", "s.json", "--", "client", "--debug"]))
  })

  it.live("the process: a file problem exits 2 in one line; --debug shows where", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "testbed-exit-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      // Side by side: each is a whole CLI start. A bad flag (exit 2) is covered in-process above.
      const [plain, debug] = yield* Effect.all([testbed("report", dir), testbed("report", dir, "--debug")], {
        concurrency: 2
      })
      assert.strictEqual(plain.code, 2, plain.stderr)
      assert.match(plain.stderr, /^testbed: .*events\.jsonl.*\n$/)
      assert.notMatch(plain.stderr, stackTrace)
      assert.strictEqual(debug.code, 2)
      assert.match(debug.stderr, stackTrace)
    }).pipe(Effect.scoped)
  )
})
