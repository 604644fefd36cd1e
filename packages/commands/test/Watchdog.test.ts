// Children die with their run, even when the run is SIGKILLed and no finalizer runs: the watchdog ends every
// process group still listed once the run's pipe closes.
import { spawn } from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { isRunning } from "./fixtures/processes.ts"

const script = decodeURIComponent(new URL("./fixtures/guarded-family.ts", import.meta.url).pathname)

describe("Watchdog", () => {
  it.live(
    "SIGKILL of a process running commands through LocalRunner leaves none of their processes behind",
    () =>
      Effect.gen(function* () {
        const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "pipe"] })
        let output = ""
        child.stdout.on("data", (chunk) => (output += String(chunk)))
        child.stderr.on("data", (chunk) => (output += String(chunk)))
        yield* Effect.addFinalizer(() => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")))
        const pids = yield* Effect.sync(() =>
          output
            .trim()
            .split("\n")
            .filter((line) => /^\d+$/.test(line))
        ).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (found) => found.length === 3 }),
          Effect.timeout("30 seconds")
        )
        for (const pid of pids.map(Number)) assert.isTrue(isRunning(pid), `${pid} runs before the kill`)
        // Whatever is left afterwards is killed here too, so a failing run of this test leaks nothing.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of pids.map(Number)) if (isRunning(pid)) process.kill(pid, "SIGKILL")
          })
        )

        child.kill("SIGKILL")
        const survivors = yield* Effect.sync(() => pids.map(Number).filter(isRunning)).pipe(
          Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (left) => left.length === 0 }),
          Effect.timeoutOption("20 seconds")
        )
        assert.deepStrictEqual(survivors._tag === "Some" ? survivors.value : pids.map(Number).filter(isRunning), [])
      }).pipe(Effect.scoped),
    60_000
  )
})
