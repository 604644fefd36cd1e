// Large output: a service and a step write 40 MB each, then END-MARK. Their logs stay bounded (head and tail
// kept, the cut marked) and `output_matches` sees what came last, so the verdict is right.
import { readFileSync, statSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { OutputFile } from "@testbed/commands"
import { Effect, FileSystem, Result } from "effect"
import { Pattern } from "../src/index.ts"
import * as Output from "../src/internal/output.ts"
import { provide, runFixture } from "./support.ts"

describe("output of services and steps", () => {
  it.live(
    "40 MB then END-MARK: bounded logs that say where they cut, and output_matches finds the END-MARK",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("cases/large-output.yaml")
          const [test] = outcome.result!.tests
          assert.strictEqual(test?.status, "passed", test?.reason)
          const attempt = `${outcome.runDir}/tests/chatty/attempt-1`
          for (const [log, bound] of [
            [`${attempt}/client/stdout.log`, OutputFile.maxBytes()],
            // A step's output is its CommandResult's: 16 MiB (half head, half tail) and the marker.
            [`${attempt}/steps/chatty-step.stdout.log`, 16 * 1024 * 1024 + 100]
          ] as const) {
            const size = statSync(log).size
            assert.isBelow(size, bound, `${log} is ${size} bytes`)
            const text = readFileSync(log, "utf8")
            assert.match(text, /\[testbed: \d+ bytes of output left out here\]/)
            assert.isTrue(text.endsWith("END-MARK\n"), `${log} ends with END-MARK`)
          }
        })
      ),
    180_000
  )

  it.live("a log written by anything else (no bound of its own) is read within a window: its start and its end", () =>
    provide(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-window-" })
        const log = `${dir}/huge.log`
        const line = `${"z".repeat(1023)}\n`
        yield* fs.writeFileString(log, `FIRST\n${line.repeat(40 * 1024)}END-MARK\n`)
        const text = (yield* Output.window(log))!
        assert.isAtMost(text.length, Output.windowBytes + 100)
        assert.isTrue(text.startsWith("FIRST\n"))
        assert.isTrue(text.endsWith("END-MARK\n"))
        const endMark = Pattern.compile("^END-MARK$")
        assert.isTrue(Result.isSuccess(endMark) && (yield* Output.matches(log, endMark.success)))
      })
    )
  )
})
