// Machine-readable output for CI scripts: --json documents, the event log on stdout, and no crash when the reader
// of stdout goes away early.
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bin, testbed } from "./support.ts"

const fixtures = decodeURIComponent(new URL("../../../fixtures/", import.meta.url).pathname)

/** A scratch output directory for a run, removed afterwards. */
const outputDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "testbed-json-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** `testbed ARGS | READER` in bash: testbed's exit status, stderr and what the reader printed. */
const piped = (reader: string, ...args: ReadonlyArray<string>) =>
  Effect.callback<{ status: string; stderr: string; stdout: string }>((resume) => {
    const quoted = [process.execPath, bin, ...args].map((arg) => `'${arg}'`).join(" ")
    const child = execFile(
      "bash",
      ["-c", `${quoted} | ${reader}; echo "status=\${PIPESTATUS[0]}" >&2`],
      { timeout: 60_000 },
      (_error, stdout, stderr) =>
        resume(Effect.succeed({ status: /status=(\d+)/.exec(stderr)?.[1] ?? "?", stderr, stdout }))
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("machine-readable output", () => {
  it.live("a reader that stops early (| head -1) ends nothing abruptly: no EPIPE crash, the run finishes", () =>
    Effect.gen(function* () {
      const head = yield* piped("head -1", "plugins", "list")
      assert.strictEqual(head.stdout, "Service plugins:\n")
      assert.strictEqual(head.status, "0", head.stderr)
      // The run's first event reaches head, which exits; the next ones, a moment later, meet a closed pipe.
      const dir = yield* outputDir
      const run = yield* piped(
        "head -1",
        "run",
        `${fixtures}experiments/cases/fast-fail.yaml`,
        "--output-dir",
        dir,
        "--events",
        "-"
      )
      assert.include(run.stdout, `"type":"experiment.started"`)
      assert.notInclude(run.stderr, "EPIPE")
      assert.include(run.stderr, "HTML report:", "the run went on to its end and wrote its reports")
      assert.strictEqual(run.status, "1", run.stderr)
    })
  )

  it.live("plugins list --json: every plugin with its roles, source and missing programs", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* testbed("plugins", "list", "--json")
      assert.strictEqual(code, 0)
      const listed = JSON.parse(stdout)
      const echo = listed.services.find((s: { name: string }) => s.name === "node-echo")
      assert.deepStrictEqual([echo.roles, echo.source, echo.missing], [["server", "client"], "builtin", []])
      assert.includeMembers(
        listed.environments.map((e: { name: string }) => e.name),
        ["localhost", "docker"]
      )
    })
  )

  it.live("replay check --json: the entries' figures, or the error with its exit code", () =>
    Effect.gen(function* () {
      const good = yield* testbed("replay", "check", `${fixtures}replay/greeting-1.json`, "--json")
      assert.strictEqual(good.code, 0)
      const summary = JSON.parse(good.stdout)
      assert.strictEqual(summary.ok, true)
      assert.strictEqual(summary.entries[0].name, "recorded_script")
      assert.strictEqual(summary.entries[0].exchanges, 6)
      const bad = yield* testbed("replay", "check", `${fixtures}replay/no-such-script.json`, "--json")
      assert.strictEqual(bad.code, 2)
      assert.deepStrictEqual(
        [JSON.parse(bad.stdout).ok, JSON.parse(bad.stdout).exitCode, JSON.parse(bad.stdout).error.tag],
        [false, 2, "ScriptNotFound"]
      )
    })
  )

  it.live("run --dry-run --json: the problems with their lines and columns, exit code 2", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* testbed("run", `${fixtures}experiments/cases/invalid.yaml`, "--dry-run", "--json")
      assert.strictEqual(code, 2)
      const report = JSON.parse(stdout)
      assert.strictEqual(report.exitCode, 2)
      assert.strictEqual(report.problems.length, 10)
      assert.deepStrictEqual(report.problems[0], {
        path: "tests[0].timeout",
        message: `not a duration: "soon" (use seconds, or e.g. "2s", "500ms", "1m30s", "2 minutes")`,
        line: 6,
        column: 14
      })
    })
  )

  it.live("run --json: one summary with the reports; --events - streams the log as JSON lines", () =>
    Effect.gen(function* () {
      const dir = yield* outputDir
      const file = `${fixtures}experiments/cases/fast-fail.yaml`
      const run = yield* testbed("run", file, "--output-dir", dir, "--json")
      assert.strictEqual(run.code, 1, run.stderr)
      const summary = JSON.parse(run.stdout)
      assert.deepStrictEqual([summary.ok, summary.exitCode, summary.counts], [false, 1, { failed: 1, skipped: 2 }])
      assert.isTrue(
        summary.reports.some((report: string) => report.endsWith("junit.xml")),
        run.stdout
      )
      assert.isTrue(summary.html.startsWith(dir))
      const streamed = yield* testbed("run", file, "--output-dir", dir, "--events", "-")
      assert.strictEqual(streamed.code, 1)
      const events = streamed.stdout
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line) as { type: string })
      assert.strictEqual(events[0]?.type, "experiment.started")
      assert.strictEqual(events.at(-1)?.type, "experiment.finished")
      assert.include(streamed.stderr, "HTML report:")
      const refused = yield* testbed("run", file, "--events", "log.jsonl")
      assert.strictEqual(refused.code, 2)
    })
  )
})
