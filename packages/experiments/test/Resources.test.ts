import { existsSync, readdirSync, readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { Experiment } from "../src/index.ts"
import { finishedOf, fixtures, readSummary, provide, readEvents, runFixture } from "./support.ts"

describe("resource metrics", () => {
  it.live(
    "a service holding 100 MB is sampled above 100 MB, and resource_below fails with the figure",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("resources.yaml")
          const events = readEvents(outcome.runDir)
          const samples = events.flatMap((event) =>
            event.type === "service.resources" && event.data.service === "server" ? [event.data] : []
          )
          assert.isAtLeast(samples.length, 2, "sampled while it ran")
          const peak = Math.max(...samples.map((sample) => sample.peakRssBytes))
          assert.isAbove(peak, 100 * 1024 * 1024)
          assert.isTrue(samples.every((sample) => sample.source === "proc" && sample.threads >= 1))
          const checked = events.flatMap((event) => (event.type === "assertion.checked" ? [event.data] : []))
          assert.isTrue(checked[0]?.passed, checked[0]?.message)
          assert.isFalse(checked[1]?.passed)
          assert.match(checked[1]?.message ?? "", /^service server: peak RSS \d+\.\d MB is not below 50\.0 MB$/)
          const [finished] = finishedOf(events, "holds 100 MB")
          assert.strictEqual(finished?.status, "failed")
          const usage = events.find((event) => event.type === "experiment.resources")
          assert.isAbove(usage?.type === "experiment.resources" ? usage.data.totalLogBytes : 0, 0)
          const summary = readSummary(outcome.runDir)
          assert.isAbove(summary.resources.peak_memory_bytes, 100 * 1024 * 1024)
          assert.isAbove(summary.resources.disk_usage_bytes, 0)
          const server = summary.services.find((service: { service_name: string }) => service.service_name === "server")
          assert.strictEqual(server.resources.peak_rss_bytes, peak)
        })
      ),
    60_000
  )

  it.live(
    "a command step is sampled like a service (step:hog), and its output is still the command's own",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("resources-steps.yaml")
          const events = readEvents(outcome.runDir)
          assert.strictEqual(finishedOf(events, "a step holds 80 MB")[0]?.status, "passed")
          const samples = events.flatMap((event) =>
            event.type === "service.resources" && event.data.service === "step:hog" ? [event] : []
          )
          assert.isAtLeast(samples.length, 2, "sampled while it ran")
          assert.strictEqual(samples[0]?.entityId, "a step holds 80 MB/step:hog")
          const peak = Math.max(...samples.map((sample) => sample.data.peakRssBytes))
          assert.isAbove(peak, 80 * 1024 * 1024)
          const summary = readSummary(outcome.runDir)
          const step = summary.services.find((service: { service_name: string }) => service.service_name === "step:hog")
          assert.strictEqual(step.resources.peak_rss_bytes, peak)
          const steps = `${outcome.runDir}/tests/${readdirSync(`${outcome.runDir}/tests`)[0]}/attempt-1/steps`
          assert.strictEqual(readFileSync(`${steps}/hog.stdout.log`, "utf8"), `held ${80 * 1024 * 1024}\n`)
          assert.isFalse(existsSync(`${steps}/hog.pid`), "the pid file is removed")
        })
      ),
    60_000
  )

  it.effect("--metrics-interval overrides the file; a zero interval is a problem", () =>
    provide(
      Effect.gen(function* () {
        const prepared = yield* Experiment.prepare(`${fixtures}resources.yaml`, {
          metricsInterval: Duration.seconds(2)
        })
        assert.deepStrictEqual(prepared.plan.tests[0]?.metricsInterval, Duration.seconds(2))
        const error = yield* Effect.flip(
          Experiment.prepare(`${fixtures}resources.yaml`, { metricsInterval: Duration.zero })
        )
        assert.deepStrictEqual(
          error.problems.map((problem) => problem.path),
          ["metrics.interval"]
        )
      })
    )
  )
})
