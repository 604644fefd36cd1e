// The real CLI as a child process, the way a user runs it (for what only a process shows: exit codes, stderr).
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { EventLog, type TestbedEvent } from "@testbed/events"
import { Effect, Result } from "effect"

export const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

/** `testbed ARGS` in a process of its own, killed after `timeoutMs`. */
export const testbedWithin =
  (timeoutMs: number) =>
  (...args: ReadonlyArray<string>) =>
    Effect.callback<{ code: number; stdout: string; stderr: string }>((resume) => {
      const child = execFile(process.execPath, [bin, ...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
        resume(Effect.succeed({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
      })
      return Effect.sync(() => child.kill("SIGKILL"))
    })

export const testbed = testbedWithin(30_000)

/** Every line of a run's event log, each checked against the event schemas. */
export const readEvents = (runDir: string): ReadonlyArray<TestbedEvent.TestbedEvent> =>
  Result.getOrThrow(EventLog.decodeText(readFileSync(`${runDir}/events.jsonl`, "utf8"), `${runDir}/events.jsonl`))
