// Shared by the report tests: the fixture logs, rendered into a scoped temporary directory.
import { spawnSync } from "node:child_process"
import { appendFileSync, existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Effect, FileSystem } from "effect"
import * as Collector from "../src/Collector.ts"
import * as ReportWriter from "../src/ReportWriter.ts"

export const fixtures = fileURLToPath(new URL("../../../fixtures/reports/", import.meta.url))
/** Golden reports, one folder per scenario (biome leaves test/golden alone, so they stay byte-exact). */
export const golden = fileURLToPath(new URL("./golden/", import.meta.url))
export const testResults = fileURLToPath(new URL("../../../test-results/reports/", import.meta.url))

export const scenarios = ["passing", "failing", "interrupted", "retries", "triage"] as const
export type Scenario = (typeof scenarios)[number]

/** The fixed `generated_at` of the golden files. */
export const generatedAt = "2026-03-15T00:00:00.000Z"

/** Copies a fixture run directory (its log and the files it names) into a fresh directory; returns that. */
export const copyFixture = (scenario: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: `testbed-reports-${scenario.replace(/\W/g, "-")}-` })
    yield* fs.copy(`${fixtures}${scenario}`, dir, { overwrite: true })
    return dir
  })

/** Copies a fixture run directory and renders every format there; returns the directory and the files written. */
export const renderFixture = (scenario: Scenario) =>
  Effect.gen(function* () {
    const dir = yield* copyFixture(scenario)
    const written = yield* ReportWriter.renderDirectory(dir, { generatedAt })
    return { dir, written }
  })

/**
 * Whether a test needing an external tool runs: always under CI (so a missing tool fails the test there),
 * otherwise only when the tool is installed.
 */
export const required = (present: boolean): boolean => present || process.env.CI === "true"

export const xmllintPresent = spawnSync("xmllint", ["--version"]).status === 0
export const chromiumPath = "/usr/bin/chromium"
export const chromiumPresent = existsSync(chromiumPath)

/**
 * Writes a log of `tests` tests: a start and a finish each (every 17th failed), and for the first ten a service
 * walking its state machine. Lines are appended in batches so generating stays a second or two.
 */
export const writeLargeLog = (file: string, tests: number): void => {
  const t0 = Date.parse("2026-01-01T00:00:00.000Z")
  let n = 0
  let batch: Array<string> = []
  const emit = (type: string, entityId: string, data: unknown) => {
    const timestamp = new Date(t0 + n * 2).toISOString()
    batch.push(JSON.stringify({ id: `e${n++}`, type, entityType: type.split(".")[0], entityId, timestamp, data }))
    if (batch.length >= 20_000) {
      appendFileSync(file, `${batch.join("\n")}\n`)
      batch = []
    }
  }
  emit("experiment.started", "huge", { name: "huge run", settings: {} })
  for (let t = 0; t < tests; t++) {
    const name = `test-${t}`
    emit("test.started", name, { name, attempt: 1 })
    if (t < 10) {
      for (const [from, to] of [
        ["CREATED", "STARTING"],
        ["STARTING", "RUNNING"],
        ["RUNNING", "STOPPED"]
      ]) {
        emit("service.state_changed", `${name}/server`, { machine: "service", from, to, trigger: "t", metadata: {} })
      }
    }
    const failed = t % 17 === 0
    emit("test.finished", name, {
      name,
      attempt: 1,
      status: failed ? "failed" : "passed",
      durationMs: 2,
      ...(failed ? { errorMessage: `exit code ${t % 7}` } : {})
    })
  }
  emit("experiment.finished", "huge", { status: "completed" })
  appendFileSync(file, batch.length === 0 ? "" : `${batch.join("\n")}\n`)
}

/** A collector fed by `add(type, entityId, data)`, with ids and timestamps (1 ms apart from `start`) made up as it goes. */
export const collecting = (start = "2026-01-01T00:00:00.000Z") => {
  const collector = Collector.make()
  const t0 = Date.parse(start)
  let n = 0
  const add = (type: string, entityId: string, data: unknown) =>
    collector.add({
      id: `e${n}`,
      type,
      entityType: type.split(".")[0] ?? "",
      entityId,
      timestamp: new Date(t0 + n++).toISOString(),
      data
    })
  return { add, summary: () => collector.summary({ generatedAt }) }
}
