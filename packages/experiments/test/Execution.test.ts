import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { Experiment } from "../src/index.ts"
import { finishedOf, fixtures, hasProgram, provide, readEvents, readSummary, runFixture } from "./support.ts"

const ci = process.env.CI === "true"
const tools = hasProgram("strace") && hasProgram("valgrind")

// A C program with one invalid read past a heap block: memcheck reports exactly this error.
const leakySource = `#include <stdlib.h>
#include <stdio.h>
int main(void) { int *p = malloc(4 * sizeof(int)); int x = p[4]; printf("%d\\n", x > 0); free(p); return 0; }
`

describe.skipIf(!tools && !ci)("execution environments", () => {
  it.live(
    "strace and memcheck artifacts are present and parsed; a memory-limited service is killed by its limit",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("execution.yaml")
          const events = readEvents(outcome.runDir)
          const artifacts = events.flatMap((event) => (event.type === "test.artifact" ? [event.data] : []))
          const strace = artifacts.find((artifact) => artifact.name === "client strace")
          assert.strictEqual(strace?.kind, "profile")
          assert.match(strace?.description ?? "", /^\d+ syscalls \(\d+ failed\); most: \w+ \d+/)
          assert.include(readFileSync(`${outcome.runDir}/${strace?.path}`, "utf8"), "total")
          const memcheck = artifacts.find((artifact) => artifact.name === "client memcheck")
          assert.strictEqual(memcheck?.description, "valgrind memcheck: 0 error(s)")
          assert.strictEqual(finishedOf(events, "traced")[0]?.status, "passed")
          assert.strictEqual(finishedOf(events, "memchecked")[0]?.status, "passed")
          const limited = finishedOf(events, "memory limited")[0]
          assert.strictEqual(limited?.status, "failed")
          assert.include(limited?.errorMessage ?? "", "killed by its memory limit (64.0 MB) (SIGKILL)")
          const exited = events.find(
            (event) => event.type === "service.exited" && event.entityId === "memory limited/client"
          )
          assert.strictEqual(
            exited?.type === "service.exited" ? exited.data.killedBy : undefined,
            "its memory limit (64.0 MB)"
          )
          const summary = readSummary(outcome.runDir)
          const service = summary.services.find((s: { test: string }) => s.test === "memory limited")
          assert.strictEqual(service.killed_by, "its memory limit (64.0 MB)")
          // Its cgroup is gone with it.
          const leftovers = execFileSync(
            "sh",
            [
              "-c",
              "ls -d /sys/fs/cgroup/memory/testbed-memory-limited* /sys/fs/cgroup/testbed-memory-limited* 2>/dev/null || true"
            ],
            { encoding: "utf8" }
          )
          assert.strictEqual(leftovers.trim(), "")
        })
      ),
    120_000
  )

  it.live.skipIf(!hasProgram("gcc") && !ci)(
    "memcheck_clean fails with valgrind's error count",
    () =>
      provide(
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-memcheck-" })
          writeFileSync(`${dir}/leaky.c`, leakySource)
          execFileSync("gcc", ["-g", "-O0", "-o", `${dir}/leaky`, `${dir}/leaky.c`])
          const file = `${dir}/memcheck.yaml`
          writeFileSync(
            file,
            [
              "tests:",
              "  - name: leaky",
              "    services:",
              "      client:",
              "        implementation: exec",
              "        role: client",
              "        execution: { valgrind: true }",
              `        parameters: { program: ${JSON.stringify(`${dir}/leaky`)} }`,
              "    assertions:",
              "      - { type: memcheck_clean, service: client }",
              ""
            ].join("\n")
          )
          const outcome = yield* Experiment.run(file, { outputDir: dir, progress: "none" })
          const events = readEvents(outcome.runDir)
          const checked = events.flatMap((event) => (event.type === "assertion.checked" ? [event.data] : []))
          assert.isFalse(checked[0]?.passed)
          assert.strictEqual(
            checked[0]?.message,
            "service client: valgrind memcheck found 1 error(s) (at most 0 allowed)"
          )
        })
      ),
    120_000
  )

  it.live.skipIf(!hasProgram("perf") && !ci)(
    "perf stat counts a service: its CSV report is an artifact described by the counters",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("execution.yaml", { filter: "perf counted" })
          const events = readEvents(outcome.runDir)
          assert.strictEqual(finishedOf(events, "perf counted")[0]?.status, "passed")
          const perf = events.flatMap((event) =>
            event.type === "test.artifact" && event.data.name === "client perf stat" ? [event.data] : []
          )[0]
          assert.strictEqual(perf?.kind, "profile")
          assert.match(perf?.description ?? "", /^task-clock [\d.]+ msec, context-switches \d+/)
          assert.include(readFileSync(`${outcome.runDir}/${perf?.path}`, "utf8"), ",task-clock,")
          // The service's own output is untouched by perf.
          const test = readdirSync(`${outcome.runDir}/tests`)[0]
          assert.strictEqual(
            readFileSync(`${outcome.runDir}/tests/${test}/attempt-1/client/stdout.log`, "utf8"),
            "done\n"
          )
        })
      ),
    60_000
  )

  it.effect("--dry-run names an environment whose tool is missing", () =>
    provide(
      Effect.gen(function* () {
        const prepared = yield* Experiment.prepare(`${fixtures}execution.yaml`)
        const saved = process.env.PATH
        process.env.PATH = "/nonexistent"
        const lines = yield* Effect.ensuring(
          Experiment.unavailableEnvironments(prepared.plan.tests[0]!),
          Effect.sync(() => {
            process.env.PATH = saved
          })
        )
        assert.deepStrictEqual(lines, ["client: strace: strace is not installed (not on PATH)"])
        const ok = yield* Experiment.unavailableEnvironments(prepared.plan.tests[0]!)
        assert.deepStrictEqual(ok, [])
      })
    )
  )

  it.effect("memcheck_clean on a service not run under valgrind is a problem of the file", () =>
    provide(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-memcheck-" })
        const file = `${dir}/bad.yaml`
        writeFileSync(
          file,
          "tests:\n  - name: t\n    services:\n      c: { implementation: exec, role: client, parameters: { program: 'true' } }\n    assertions:\n      - { type: memcheck_clean, service: c }\n      - { type: resource_below, service: c }\n"
        )
        const error = yield* Effect.flip(Experiment.prepare(file))
        assert.deepStrictEqual(
          error.problems.map((problem) => `${problem.path}: ${problem.message}`),
          [
            'tests[0].assertions[0].service: "c" does not run under valgrind (execution: {valgrind: true})',
            "tests[0].assertions[1]: give at least one limit: peak_rss, cpu_time, threads or open_files"
          ]
        )
      })
    )
  )
})
