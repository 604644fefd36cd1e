// The tests' throwaway Postgres (postgres.ts) does not outlive a test process killed without a chance to stop it
// (SIGKILL: a vitest worker killed, a CI job cancelled): a process that started one is SIGKILLed, and its postmaster
// must be gone, and its directory removed, within a deadline.
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync, rmSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule, Schema } from "effect"
import { skipWithoutPostgres } from "./postgres.ts"

const holder = decodeURIComponent(new URL("./holdPostgres.ts", import.meta.url).pathname)

const Started = Schema.Struct({ dir: Schema.String, port: Schema.Number, postmaster: Schema.Int })

/** Whether `pid` is a live process (a zombie, dead but not yet reaped by whoever adopted it, is not). */
const running = (pid: number) =>
  Effect.try(() => readFileSync(`/proc/${pid}/stat`, "utf8")).pipe(
    // The state follows the command name, which is in parentheses.
    Effect.map((stat) => stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"),
    Effect.orElseSucceed(() => false)
  )

/** Whether `check` came true within 60 s (an immediate stop takes a moment, much more on a loaded machine). */
const until = (check: Effect.Effect<boolean>) =>
  check.pipe(
    Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("200 millis") }),
    Effect.timeoutOption("60 seconds"),
    Effect.map((done) => done._tag === "Some")
  )

/** The holder's first line of output, within `deadline` (initdb took over a minute at load 27). */
const started = (child: ChildProcess) =>
  Effect.callback<string, Error>((resume) => {
    let output = ""
    const onData = (data: Buffer) => {
      output += String(data)
      const line = output.indexOf("\n")
      if (line >= 0) resume(Effect.succeed(output.slice(0, line)))
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", (data) => (output += String(data)))
    child.once("exit", (code) => resume(Effect.fail(new Error(`the holder exited (${code}): ${output}`))))
    return Effect.sync(() => child.stdout?.off("data", onData))
  }).pipe(Effect.timeout("180 seconds"), Effect.flatMap(Schema.decodeUnknownEffect(Schema.fromJsonString(Started))))

describe.skipIf(skipWithoutPostgres)("the tests' throwaway Postgres", () => {
  it.live(
    "dies with the process that started it, SIGKILL included, and its directory goes",
    () =>
      Effect.gen(function* () {
        const child = yield* Effect.acquireRelease(
          Effect.sync(() => spawn(process.execPath, [holder], { stdio: ["ignore", "pipe", "pipe"] })),
          (child) => Effect.sync(() => child.kill("SIGKILL"))
        )
        const server = yield* started(child)
        // Should the watchdog fail, this test still leaves nothing behind.
        yield* Effect.addFinalizer(() =>
          Effect.ignore(Effect.try(() => process.kill(server.postmaster, "SIGQUIT"))).pipe(
            // Its files go once it has stopped writing them.
            Effect.andThen(until(Effect.map(running(server.postmaster), (live) => !live))),
            Effect.andThen(Effect.sync(() => rmSync(server.dir, { recursive: true, force: true })))
          )
        )
        assert.isTrue(yield* running(server.postmaster), "the postmaster runs")
        // Holding it: SIGKILL, not its own end, is what ends it.
        assert.isTrue(yield* running(child.pid!), "the holder runs")
        child.kill("SIGKILL")
        const gone = yield* until(Effect.map(running(server.postmaster), (live) => !live && !existsSync(server.dir)))
        assert.isTrue(gone, `postmaster ${server.postmaster} or ${server.dir} left behind`)
      }).pipe(Effect.scoped),
    300_000
  )
})
