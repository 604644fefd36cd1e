// Folding an event log into an ExperimentSummary: events/s for `Collector.fold(EventLog.read(log))`, beside the raw
// JSONL read-and-decode rate of the same file (`EventLog.read` drained) measured in the same run, and the fold
// alone over events already in memory; then reading the evidence of the failures (log tails) beside the fold; then
// writing all five reports of the summary beside rendering each as one string.
// Run: node_modules/.bin/node bench/reports.ts [events]
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { Effect, Stream } from "effect"
import type { Event } from "../packages/events/src/Event.ts"
import * as EventLog from "../packages/events/src/EventLog.ts"
import * as Collector from "../packages/reports/src/Collector.ts"
import * as Evidence from "../packages/reports/src/Evidence.ts"
import * as ReportWriter from "../packages/reports/src/ReportWriter.ts"
import type { ExperimentSummary } from "../packages/reports/src/ExperimentSummary.ts"

const total = Number(process.argv[2] ?? 1_000_000)
const t0 = Date.parse("2026-01-01T00:00:00.000Z")

/**
 * A realistic mix: per test a registration, attempts, service state changes, steps, assertions, artifacts, commands;
 * roughly 60 events per test, so 1,000,000 events is about 16,000 tests.
 */
const writeLog = (path: string) => {
  let n = 0
  let lines: Array<string> = []
  const emit = (type: string, entityId: string, data: unknown) => {
    lines.push(
      JSON.stringify({
        id: `e${n}`,
        type,
        entityType: type.slice(0, type.indexOf(".")),
        entityId,
        timestamp: new Date(t0 + n * 3).toISOString(),
        data
      })
    )
    n++
    if (lines.length >= 50_000) {
      appendFileSync(path, `${lines.join("\n")}\n`)
      lines = []
    }
  }
  const change = (entity: string, id: string, from: string, to: string) =>
    emit(`${entity}.state_changed`, id, { machine: entity, from, to, trigger: to.toLowerCase(), metadata: {} })
  emit("experiment.started", "bench", { name: "bench", settings: { retries: 1 } })
  const states = ["CREATED", "PREPARING", "PREPARED", "DEPLOYING", "DEPLOYED", "STARTING", "RUNNING", "READY"]
  for (let t = 0; n < total - 1; t++) {
    const test = `test-${t}`
    const participants = [
      { service: "server", implementation: `impl-${t % 7}`, type: "iut", role: "server" },
      { service: "client", implementation: "tester", type: "tester", role: "client" }
    ]
    emit("test.registered", test, {
      name: test,
      participants,
      matrix: { row: `impl-${t % 7}`, column: `case-${t % 11}` }
    })
    const attempts = t % 13 === 0 ? 2 : 1
    for (let a = 1; a <= attempts; a++) {
      emit("test.started", test, { name: test, attempt: a })
      change("test", test, "CREATED", "EXECUTING")
      for (const service of ["server", "client"]) {
        const id = `${test}/${service}`
        for (let i = 1; i < states.length; i++) change("service", id, states[i - 1]!, states[i]!)
        emit("service.started", id, { test, service, implementation: "x", type: "iut", pid: 1000 + t })
      }
      emit("command.started", `${test}-${a}`, {
        program: "client",
        args: ["--port", "4443"],
        runner: "local",
        attempt: 1
      })
      emit("command.completed", `${test}-${a}`, { exitCode: 0, durationMs: 12, attempts: 1, truncated: false })
      for (let s = 0; s < 3; s++) {
        emit("step.started", `${test}/step/${s}`, { test, index: s, kind: "wait" })
        emit("step.finished", `${test}/step/${s}`, { test, index: s, kind: "wait", status: "passed", durationMs: 5 })
      }
      const passed = !(a === 1 && attempts === 2) && t % 17 !== 0
      emit("assertion.checked", `${test}/assertion/0`, { test, index: 0, kind: "exit_code", passed })
      for (const service of ["server", "client"]) {
        const id = `${test}/${service}`
        change("service", id, "READY", "STOPPING")
        emit("service.exited", id, { test, service, exitCode: 0, signal: null, crashed: false })
        change("service", id, "STOPPING", "STOPPED")
        change("service", id, "STOPPED", "DESTROYED")
      }
      emit("test.artifact", test, {
        name: "server.log",
        kind: "log",
        path: `logs/${test}/server.log`,
        service: "server"
      })
      emit("test.finished", test, {
        name: test,
        attempt: a,
        status: passed ? "passed" : "failed",
        durationMs: 40,
        willRetry: a < attempts,
        ...(passed ? {} : { errorMessage: "exit code 1" })
      })
    }
  }
  emit("experiment.finished", "bench", { status: "completed" })
  appendFileSync(path, lines.length === 0 ? "" : `${lines.join("\n")}\n`)
  return n
}

const time = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = performance.now()
    const value = yield* effect
    return { seconds: (performance.now() - start) / 1000, value }
  })

const program = (path: string, events: number) =>
  Effect.gen(function* () {
    // The baseline: reading the JSONL file and decoding every envelope, nothing of reports.
    const readDecode = Stream.runCount(EventLog.read(path))
    const fold = Collector.fold(EventLog.read(path), { generatedAt: "2026-01-02T00:00:00.000Z" })
    const inMemory = Effect.gen(function* () {
      const all: ReadonlyArray<Event> = yield* Stream.runCollect(EventLog.read(path))
      return yield* time(Collector.fold(Stream.fromIterable(all), { generatedAt: "2026-01-02T00:00:00.000Z" }))
    })
    yield* readDecode // warm up
    yield* fold
    const rounds = 3
    let raw = Number.POSITIVE_INFINITY
    let ours = Number.POSITIVE_INFINITY
    let memory = Number.POSITIVE_INFINITY
    let tests = 0
    for (let r = 0; r < rounds; r++) {
      const a = yield* time(readDecode)
      if (a.value !== events) return yield* Effect.die(`read ${a.value} events, wrote ${events}`)
      raw = Math.min(raw, a.seconds)
      const b = yield* time(fold)
      ours = Math.min(ours, b.seconds)
      tests = b.value.tests.total
      memory = Math.min(memory, (yield* inMemory).seconds)
    }
    const rate = (s: number) => Math.round(events / s).toLocaleString("en")
    const mb = statSync(path).size / 1e6
    console.log(
      `events: ${events.toLocaleString("en")} (${mb.toFixed(0)} MB JSONL, ${tests.toLocaleString("en")} tests), best of ${rounds}`
    )
    console.log(`raw read + envelope decode : ${rate(raw)} events/s`)
    console.log(`read + decode + fold       : ${rate(ours)} events/s`)
    console.log(`fold alone (in memory)     : ${rate(memory)} events/s`)
    console.log(`ratio fold/raw             : ${(raw / ours).toFixed(2)}`)
    const summary = yield* fold
    yield* evidence(summary, dirname(path), ours)
    yield* writing(summary, dirname(path))
  })

/**
 * Reading the evidence of the failures: a server log of 300 lines for each failed test (where the log's artifact
 * says it is), its tail read for each of the first `Evidence.testLimit` failed tests — beside the fold of the log.
 */
const evidence = (summary: ExperimentSummary, dir: string, foldSeconds: number) =>
  Effect.gen(function* () {
    const failed = summary.tests.results.filter(Evidence.needsEvidence)
    const text = Array.from({ length: 300 }, (_, i) => `server line ${i}: ${"x".repeat(60)}\n`).join("")
    for (const t of failed) {
      mkdirSync(join(dir, "logs", t.name), { recursive: true })
      writeFileSync(join(dir, "logs", t.name, "server.log"), text)
    }
    let best = Number.POSITIVE_INFINITY
    let tails = 0
    for (let r = 0; r < 3; r++) {
      const run = yield* time(Evidence.attach(summary, dir))
      best = Math.min(best, run.seconds)
      tails = run.value.tests.results.reduce((n, t) => n + t.attempts.reduce((m, a) => m + a.log_tails.length, 0), 0)
    }
    console.log(
      `read evidence              : ${best.toFixed(2)} s (${tails} log tails of ${failed.length} tests that did not pass)`
    )
    console.log(`ratio evidence/fold        : ${(best / foldSeconds).toFixed(2)}`)
  })

/**
 * Writing every report of the summary: the writer (pieces, batched writes through an exclusive temp file) beside
 * the baseline of rendering each format to one string, as the writer did before. For a large enough run the
 * baseline cannot be done at all (V8 strings stop near 512 MiB); the writer still can.
 */
const writing = (summary: ExperimentSummary, dir: string) =>
  Effect.gen(function* () {
    const out = join(dir, "reports")
    const ours = yield* time(ReportWriter.writeSummary(summary, out))
    const bytes = ours.value.reduce((sum, file) => sum + statSync(file).size, 0)
    const start = performance.now()
    const baseline = yield* Effect.try(() => {
      for (const format of ReportWriter.formats) ReportWriter.render(summary, format)
    }).pipe(
      Effect.map(() => (performance.now() - start) / 1000),
      Effect.catch((error) => Effect.succeed(String(error.cause)))
    )
    console.log(`write all 5 reports        : ${ours.seconds.toFixed(2)} s (${(bytes / 1e6).toFixed(0)} MB)`)
    if (typeof baseline === "string") console.log(`render each as one string  : impossible here (${baseline})`)
    else {
      console.log(`render each as one string  : ${baseline.toFixed(2)} s (no file written)`)
      console.log(`ratio write/one-string     : ${(ours.seconds / baseline).toFixed(2)}`)
    }
  })

const dir = mkdtempSync(join(tmpdir(), "testbed-bench-reports-"))
const path = join(dir, "events.jsonl")
const written = writeLog(path)
Effect.runPromise(program(path, written).pipe(Effect.provide(NodeServices.layer))).finally(() =>
  rmSync(dir, { recursive: true, force: true })
)
