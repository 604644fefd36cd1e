// Shared by the report tests: the fixture logs, rendered into a scoped temporary directory.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Effect, FileSystem } from "effect"
import * as ReportWriter from "../src/ReportWriter.ts"

export const fixtures = fileURLToPath(new URL("../../../fixtures/reports/", import.meta.url))
/** Golden reports, one folder per scenario (biome leaves test/golden alone, so they stay byte-exact). */
export const golden = fileURLToPath(new URL("./golden/", import.meta.url))
export const testResults = fileURLToPath(new URL("../../../test-results/reports/", import.meta.url))

export const scenarios = ["passing", "failing", "interrupted", "retries"] as const
export type Scenario = (typeof scenarios)[number]

/** The fixed `generated_at` of the golden files. */
export const generatedAt = "2026-03-15T00:00:00.000Z"

/** Copies a fixture log into a fresh directory and renders every format there; returns the directory. */
export const renderFixture = (scenario: Scenario) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: `testbed-reports-${scenario}-` })
    yield* fs.copyFile(`${fixtures}${scenario}/events.jsonl`, `${dir}/${ReportWriter.eventLogName}`)
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
