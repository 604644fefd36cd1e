import { spawn } from "node:child_process"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as ProcessTree from "../src/ProcessTree.ts"

describe("ProcessTree", () => {
  it("parses /proc stat with a command name holding spaces and parentheses", () => {
    const stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 9 0 1000 12345678 2500 rest"
    const status = "Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n"
    const io = "rchar: 10\nwchar: 20\nread_bytes: 4096\nwrite_bytes: 8192\n"
    const reading = ProcessTree.parseProcess(4242, stat, status, io, 12)
    assert.deepStrictEqual(reading, {
      pid: 4242,
      cpuTicks: 200,
      childTicks: 10,
      rssBytes: 102400 * 1024,
      hwmBytes: 204800 * 1024,
      threads: 9,
      openFiles: 12,
      readBytes: 4096,
      writeBytes: 8192
    })
  })

  it.live("reads a real tree: a shell and its child are two processes; an ended root is None", () =>
    Effect.gen(function* () {
      const child = spawn("sh", ["-c", "sleep 30 & wait"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      const pid = child.pid!
      // The shell forks its sleep a moment after it starts: read until both are there.
      let reading = yield* ProcessTree.read(pid)
      for (let n = 0; n < 50 && (Option.isNone(reading) || reading.value.processes < 2); n++) {
        yield* Effect.sleep("100 millis")
        reading = yield* ProcessTree.read(pid)
      }
      assert.isTrue(Option.isSome(reading))
      if (Option.isSome(reading)) {
        assert.strictEqual(reading.value.processes, 2)
        assert.isAbove(reading.value.rssBytes, 0)
        assert.isAtLeast(reading.value.threads, 2)
        assert.isAtLeast(reading.value.openFiles, 1)
      }
      assert.isTrue(Option.isNone(yield* ProcessTree.read(2 ** 22 + 1)))
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )
})
