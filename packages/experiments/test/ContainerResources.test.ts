import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Experiment } from "../src/index.ts"
import { finishedOf, fixtures, provide, readEvents, readSummary, runFixture } from "./support.ts"

/** Whether an engine answers. Without one these tests skip locally and fail in CI (CI=true). */
const hasEngine = (() => {
  try {
    execFileSync("docker", ["info", "--format", "{{.ServerVersion}}"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

describe.skipIf(!hasEngine && process.env.CI === undefined)("resources of services in containers", () => {
  it.live(
    "a container touching 100 MB is sampled above it; a 32 MB limit set through the engine kills and is named",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("resources-docker.yaml")
          const events = readEvents(outcome.runDir)
          const samples = events.flatMap((event) =>
            event.type === "service.resources" &&
            event.data.test === "touches 100 MB" &&
            event.data.service === "server"
              ? [event.data]
              : []
          )
          assert.isAtLeast(samples.length, 2, "sampled while it ran")
          assert.isTrue(samples.every((sample) => sample.source === "cgroup" && sample.processes >= 1))
          const peak = Math.max(...samples.map((sample) => sample.peakRssBytes))
          assert.isAbove(peak, 100 * 1024 * 1024)
          assert.isAbove(samples[samples.length - 1]!.cpuMs, 0)
          const checked = events.flatMap((event) => (event.type === "assertion.checked" ? [event.data] : []))
          assert.isTrue(checked[0]?.passed, checked[0]?.message)
          assert.isFalse(checked[1]?.passed)
          assert.match(checked[1]?.message ?? "", /^service server: peak RSS \d+\.\d MB is not below 50\.0 MB$/)
          const summary = readSummary(outcome.runDir)
          assert.isAbove(summary.resources.peak_memory_bytes, 100 * 1024 * 1024)
          const limited = finishedOf(events, "memory limited")[0]
          assert.strictEqual(limited?.status, "failed")
          assert.include(limited?.errorMessage ?? "", "killed by its memory limit (32.0 MB)")
          const exited = events.find(
            (event) => event.type === "service.exited" && event.entityId === "memory limited/client"
          )
          assert.strictEqual(
            exited?.type === "service.exited" ? exited.data.killedBy : undefined,
            "its memory limit (32.0 MB)"
          )
          // strace cannot run in the image: the service ran without it, and nothing claims a syscall summary.
          assert.isFalse(events.some((event) => event.type === "test.artifact" && event.data.name === "client strace"))
          const tests = readdirSync(`${outcome.runDir}/tests`)
          assert.strictEqual(tests.length, 2)
          const log = readFileSync(`${outcome.runDir}/events.jsonl`, "utf8")
          assert.notInclude(log, "no resource metrics in docker")
        })
      ),
    120_000
  )

  it.effect("--dry-run says strace and valgrind do not run in a container; limits do", () =>
    provide(
      Effect.gen(function* () {
        const prepared = yield* Experiment.prepare(`${fixtures}resources-docker.yaml`)
        const limited = prepared.plan.tests.find((test) => test.name === "memory limited")!
        assert.deepStrictEqual(yield* Experiment.unavailableEnvironments(limited), [
          "client: strace: runs on localhost only, not in a container"
        ])
      })
    )
  )
})
