// The real CLI as a child process, the way a user runs it (for what only a process shows: exit codes, stderr).
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { TestbedEvent } from "@testbed/events"
import { Effect, Schema } from "effect"

export const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

export const testbed = (...args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number; stdout: string; stderr: string }>((resume) => {
    const child = execFile(process.execPath, [bin, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const decodeEvent = Schema.decodeUnknownSync(TestbedEvent.TestbedEvent)

/** Every line of a run's event log, each checked against the event schemas. */
export const readEvents = (runDir: string): ReadonlyArray<TestbedEvent.TestbedEvent> =>
  readFileSync(`${runDir}/events.jsonl`, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => decodeEvent(JSON.parse(line)))
