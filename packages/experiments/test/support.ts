// Shared by the experiments tests: run a fixture experiment into a temporary directory and read back its record.
import { existsSync, readFileSync } from "node:fs"
import { NodeServices } from "@effect/platform-node"
import { EventLog, type TestbedEvent } from "@testbed/events"
import { Effect, FileSystem, Result } from "effect"
import { Experiment } from "../src/index.ts"

export const fixtures = decodeURIComponent(new URL("../../../fixtures/experiments/", import.meta.url).pathname)

/** Whether a program is on PATH. Tests needing one skip locally without it, and fail in CI (CI=true). */
export const hasProgram = (program: string): boolean =>
  (process.env.PATH ?? "").split(":").some((dir) => dir !== "" && existsSync(`${dir}/${program}`))

/** The tls-interop fixture needs OpenSSL and GnuTLS. */
export const hasTlsTools = hasProgram("openssl") && hasProgram("gnutls-serv") && hasProgram("gnutls-cli")

/** Every line of the run's event log, each checked against the event schemas. */
export const readEvents = (runDir: string): ReadonlyArray<TestbedEvent.TestbedEvent> =>
  Result.getOrThrow(EventLog.decodeText(readFileSync(`${runDir}/events.jsonl`, "utf8"), `${runDir}/events.jsonl`))

/** The run's `experiment_summary.json`, as plain JSON. */
export const readSummary = (runDir: string) => JSON.parse(readFileSync(`${runDir}/experiment_summary.json`, "utf8"))

export const finishedOf = (events: ReadonlyArray<TestbedEvent.TestbedEvent>, test: string) =>
  events.flatMap((event) => (event.type === "test.finished" && event.data.name === test ? [event.data] : []))

/** Runs `fixtures/experiments/<file>` with its output in a scoped temporary directory. */
export const runFixture = (file: string, options: Experiment.Options = {}) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const outputDir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-experiments-" })
    return yield* Experiment.run(`${fixtures}${file}`, { outputDir, progress: "none", ...options })
  })

export const provide = <A, E>(effect: Effect.Effect<A, E, NodeServices.NodeServices | import("effect").Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeServices.layer))
