import { type ChildProcess, spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, FileSystem, Schedule, Schema } from "effect"
import { Experiment } from "../src/index.ts"
import { finishedOf, hasProgram, provide, readEvents } from "./support.ts"
import { LocalhostEnvironment } from "@testbed/plugins"

const ci = process.env.CI === "true"

/** A port the kernel says is free on 127.0.0.1 (the localhost environment's own probe). */
const freePort = LocalhostEnvironment.allocatePort("metrics endpoint")

/** An experiment whose one test, `watched`, runs a client that polls for `stop` (the test decides when it ends). */
const writeWatched = (
  file: string,
  stop: string,
  options: { readonly header?: ReadonlyArray<string>; readonly timeout?: string; readonly pollMs: number }
) =>
  writeFileSync(
    file,
    [
      ...(options.header ?? []),
      "tests:",
      "  - name: watched",
      ...(options.timeout === undefined ? [] : [`    timeout: ${options.timeout}`]),
      "    services:",
      "      client:",
      "        implementation: exec",
      "        role: client",
      "        parameters:",
      '          program: "{{ node }}"',
      `          args: ["-e", "setInterval(() => require('fs').existsSync(process.argv[1]) && process.exit(0), ${options.pollMs})", ${JSON.stringify(stop)}]`,
      ""
    ].join("\n")
  )

const fetchText = (url: string) =>
  Effect.tryPromise(() =>
    fetch(url, { signal: AbortSignal.timeout(5000) }).then(async (r) => [r.status, await r.text()] as const)
  )

const QueryAnswer = Schema.Struct({
  status: Schema.String,
  data: Schema.Struct({
    result: Schema.Array(
      Schema.Struct({
        metric: Schema.Record(Schema.String, Schema.String),
        value: Schema.Tuple([Schema.Finite, Schema.String])
      })
    )
  })
})

/** Asks Prometheus' query API until the series has a sample with a value `accept`s, within `deadline`. */
const queryUntil = (apiPort: number, query: string, accept: (value: number) => boolean, deadline: Duration.Duration) =>
  Effect.gen(function* () {
    const url = `http://127.0.0.1:${apiPort}/api/v1/query?query=${encodeURIComponent(query)}`
    const ask = Effect.gen(function* () {
      const [, body] = yield* fetchText(url)
      const answer = yield* Schema.decodeUnknownEffect(Schema.fromJsonString(QueryAnswer))(body)
      const found = answer.data.result.filter((series) => accept(Number(series.value[1])))
      if (found.length === 0) return yield* Effect.fail("not yet")
      return found
    })
    return yield* ask.pipe(Effect.retry(Schedule.spaced("500 millis")), Effect.timeout(deadline))
  })

const startPrometheus = (dir: string, target: number, apiPort: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const config = `${dir}/prometheus.yml`
      writeFileSync(
        config,
        `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: testbed\n    static_configs: [{ targets: ["127.0.0.1:${target}"] }]\n`
      )
      return spawn(
        "prometheus",
        [`--config.file=${config}`, `--storage.tsdb.path=${dir}/data`, `--web.listen-address=127.0.0.1:${apiPort}`],
        { stdio: "ignore" }
      )
    }),
    (child: ChildProcess) =>
      Effect.callback<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGTERM")
        setTimeout(() => child.kill("SIGKILL"), 5000).unref()
      })
  )

describe.skipIf(!hasProgram("prometheus") && !ci)("run metrics", () => {
  it.live(
    "a real Prometheus scrapes --metrics-port during a run and its query API returns the series",
    () =>
      provide(
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-prometheus-" })
          const stop = `${dir}/stop`
          const file = `${dir}/watched.yaml`
          // The client runs until the test has seen the series, so the run is still going when Prometheus scrapes.
          writeWatched(file, stop, { header: ["metrics: { interval: 500ms }"], timeout: "2m", pollMs: 200 })
          const metricsPort = yield* freePort
          const apiPort = yield* freePort
          const run = yield* Effect.forkChild(Experiment.run(file, { outputDir: dir, progress: "none", metricsPort }))
          // The endpoint answers in the Prometheus text format, and only at /metrics.
          // (Retried until the first events are counted: the endpoint may answer before the run has published any.)
          const [status, text] = yield* fetchText(`http://127.0.0.1:${metricsPort}/metrics`).pipe(
            Effect.filterOrFail(([, body]) => body.includes("# TYPE testbed_events_total counter")),
            Effect.retry(Schedule.spaced("100 millis")),
            Effect.timeout("30 seconds")
          )
          assert.strictEqual(status, 200)
          assert.match(text, /^testbed_events_total\{type="experiment\.started"\} 1$/m)
          const [missing] = yield* fetchText(`http://127.0.0.1:${metricsPort}/other`)
          assert.strictEqual(missing, 404)
          yield* startPrometheus(dir, metricsPort, apiPort)
          const running = yield* queryUntil(apiPort, "testbed_services_running", (v) => v === 1, Duration.seconds(60))
          assert.strictEqual(running[0]?.metric.job, "testbed")
          const rss = yield* queryUntil(
            apiPort,
            'testbed_service_rss_bytes{service="client"}',
            (v) => v > 1_000_000,
            Duration.seconds(30)
          )
          assert.strictEqual(rss[0]?.metric.test, "watched")
          writeFileSync(stop, "")
          const outcome = yield* Fiber.join(run)
          assert.strictEqual(finishedOf(readEvents(outcome.runDir), "watched")[0]?.status, "passed")
        })
      ),
    120_000
  )
})

describe("run metrics registry", () => {
  it.live(
    "two runs in one process each count their own events (a registry per run, not the process's)",
    () =>
      provide(
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-registry-" })
          const watchedRun = (round: number) =>
            Effect.gen(function* () {
              const stop = `${dir}/stop-${round}`
              const file = `${dir}/run-${round}.yaml`
              writeWatched(file, stop, { pollMs: 100 })
              const metricsPort = yield* freePort
              const run = yield* Effect.forkChild(
                Experiment.run(file, { outputDir: dir, progress: "none", metricsPort })
              )
              const [, text] = yield* fetchText(`http://127.0.0.1:${metricsPort}/metrics`).pipe(
                Effect.filterOrFail(([, body]) => /^testbed_services_running 1$/m.test(body)),
                Effect.retry(Schedule.spaced("100 millis")),
                Effect.timeout("30 seconds")
              )
              writeFileSync(stop, "")
              yield* Fiber.join(run)
              return text
            })
          yield* watchedRun(1)
          const second = yield* watchedRun(2)
          assert.match(second, /^testbed_events_total\{type="experiment\.started"\} 1$/m)
          assert.notMatch(
            second,
            /testbed_tests_total\{status="passed"\}/,
            "the first run's finished test is not counted"
          )
        })
      ),
    90_000
  )
})
