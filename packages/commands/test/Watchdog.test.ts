// Children die with their run, even when the run is SIGKILLed and no finalizer runs: the watchdog ends every
// process group still listed once the run's pipe closes.
import { spawn } from "node:child_process"
import { readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { isRunning } from "./fixtures/processes.ts"

const fixture = (name: string) => decodeURIComponent(new URL(`./fixtures/${name}`, import.meta.url).pathname)

/** Runs a fixture that prints `count` pids, SIGKILLs it once they run, and waits until none of them is left. */
const survivorsOfKill = (script: string, count: number) =>
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
        .map(Number)
    ).pipe(
      Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (found) => found.length === count }),
      // Generous: on a shared 2-core machine under heavy load, starting Node with Effect takes tens of seconds.
      Effect.timeout("90 seconds")
    )
    for (const pid of pids) assert.isTrue(isRunning(pid), `${pid} runs before the kill`)
    // Whatever is left afterwards is killed here too, so a failing run of this test leaks nothing.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const pid of pids) if (isRunning(pid)) process.kill(pid, "SIGKILL")
      })
    )
    child.kill("SIGKILL")
    const survivors = yield* Effect.sync(() => pids.filter(isRunning)).pipe(
      Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (left) => left.length === 0 }),
      Effect.timeoutOption("20 seconds")
    )
    return survivors._tag === "Some" ? survivors.value : pids.filter(isRunning)
  }).pipe(Effect.scoped)

describe("Watchdog", () => {
  it.live(
    "SIGKILL of a process running commands through LocalRunner leaves none of their processes behind, nor its spawn helper",
    () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* survivorsOfKill(fixture("guarded-family.ts"), 4), [])
      }),
    150_000
  )

  it.live(
    "SIGKILL of a process running a service through HelperSpawner leaves none of its processes behind, nor the helper",
    () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* survivorsOfKill(fixture("guarded-service.ts"), 3), [])
      }),
    150_000
  )

  it.live(
    "a group never listed but announced by its own shell (Watchdog.announced) is ended too; no marker is left",
    () =>
      Effect.gen(function* () {
        const before = readdirSync(tmpdir()).filter((name) => name.startsWith("testbed-watchdog-"))
        assert.deepStrictEqual(yield* survivorsOfKill(fixture("announced-family.ts"), 2), [])
        // The watchdog removes its markers' directory once it has ended the groups.
        const left = yield* Effect.sync(() =>
          readdirSync(tmpdir()).filter((name) => name.startsWith("testbed-watchdog-") && !before.includes(name))
        ).pipe(
          Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (names) => names.length === 0 }),
          Effect.timeoutOption("10 seconds")
        )
        assert.deepStrictEqual(left._tag === "Some" ? left.value : ["still there"], [])
      }),
    150_000
  )
})
