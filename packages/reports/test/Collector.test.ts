import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema, Stream } from "effect"
import { type Event, EventBus } from "@testbed/events"
import * as Collector from "../src/Collector.ts"
import * as HtmlReport from "../src/HtmlReport.ts"
import * as JsonReport from "../src/JsonReport.ts"
import * as MarkdownReport from "../src/MarkdownReport.ts"
import * as ReportWriter from "../src/ReportWriter.ts"
import { type ExperimentSummary, statuses, Tests as ExperimentSummaryTests } from "../src/ExperimentSummary.ts"

const t0 = Date.parse("2026-01-01T00:00:00.000Z")

/** Builds envelopes with ids and times that only move forward. */
const builder = () => {
  let n = 0
  return (type: string, entityId: string, data: unknown, atMs = n * 100): Event.Event => ({
    id: `e${n++}`,
    type,
    entityType: type.slice(0, type.indexOf(".")),
    entityId,
    timestamp: new Date(t0 + atMs).toISOString(),
    data
  })
}

const fold = (events: ReadonlyArray<Event.Event>) =>
  Collector.fold(Stream.fromIterable(events), { generatedAt: "2026-01-02T00:00:00.000Z" })

const participants = [{ service: "server", implementation: "picoquic", type: "iut", role: "server" }] as const

const result = (s: ExperimentSummary, name: string) => {
  const found = s.tests.results.find((r) => r.name === name)
  assert.isDefined(found, `test ${name} in the summary`)
  return found!
}

describe("Collector", () => {
  it.effect("a stage's picture (stage.graph) is embedded in the HTML report as an image, never as markup", () =>
    Effect.gen(function* () {
      const e = builder()
      const svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><text>lab</text></svg>'
      const s = yield* fold([
        e("experiment.started", "run-1", { name: "stage check" }),
        e("stage.graph", "course-lab", { instance: "alice", mermaid: "graph LR", dot: "graph {}", svg }),
        e("experiment.finished", "run-1", { status: "completed" })
      ])
      assert.deepStrictEqual(s.topologies, [{ name: "course-lab (alice)", svg }])
      const html = HtmlReport.render(s)
      assert.include(html, `src="data:image/svg+xml;base64,${Buffer.from(svg).toString("base64")}"`)
      // The SVG's own <script> never reaches the page as markup: the only script is the filters' own, allowed by hash.
      assert.notInclude(html, "alert(1)")
      assert.strictEqual(html.split("<script").length - 1, 1)
      assert.deepStrictEqual(yield* JsonReport.decode(JsonReport.render(s)), s)
    })
  )

  it.effect("a test passed after a failed attempt is flaky, with both attempts kept", () =>
    Effect.gen(function* () {
      const e = builder()
      const s = yield* fold([
        e("experiment.started", "run-1", { name: "run" }),
        e("test.registered", "t", { name: "t", participants }),
        e("test.started", "t", { name: "t", attempt: 1 }),
        e("test.finished", "t", {
          name: "t",
          attempt: 1,
          status: "failed",
          durationMs: 50,
          errorMessage: "boom",
          willRetry: true
        }),
        e("test.started", "t", { name: "t", attempt: 2 }),
        e("test.finished", "t", { name: "t", attempt: 2, status: "passed", durationMs: 70 }),
        e("experiment.finished", "run-1", { status: "completed" })
      ])
      const t = result(s, "t")
      assert.strictEqual(t.status, "flaky")
      assert.isTrue(t.flaky)
      assert.strictEqual(t.retries, 1)
      assert.deepStrictEqual(
        t.attempts.map((a) => [a.attempt, a.status, a.error_message]),
        [
          [1, "failed", "boom"],
          [2, "passed", null]
        ]
      )
      assert.strictEqual(t.duration, 0.12)
      assert.strictEqual(s.tests.flaky, 1)
      assert.strictEqual(s.tests.success_rate, 100)
      assert.strictEqual(s.status, "completed")
    })
  )

  it.effect(
    "each cluster attempt names the runner and host it ran on (the Markdown report too); a local one none",
    () =>
      Effect.gen(function* () {
        const e = builder()
        const where = (attempt: number, runner: string, host: string) => ({ attempt, runner, host })
        const s = yield* fold([
          e("experiment.started", "run-1", { name: "run" }),
          e("test.registered", "t", { name: "t", participants }),
          e("test.registered", "local", { name: "local", participants }),
          e("test.started", "t", { name: "t", attempt: 1 }),
          e("test.state_changed", "t", {
            machine: "test",
            from: "CREATED",
            to: "SETTING_UP",
            trigger: "attempt 1",
            metadata: where(1, "lab-a:34431", "lab-a")
          }),
          e("test.finished", "t", { name: "t", attempt: 1, status: "runner_lost", durationMs: 50, willRetry: true }),
          e("test.started", "t", { name: "t", attempt: 1 }),
          e("test.state_changed", "t", {
            machine: "test",
            from: "CREATED",
            to: "SETTING_UP",
            trigger: "attempt 1",
            metadata: where(1, "lab-b:34431", "lab-b")
          }),
          e("test.finished", "t", { name: "t", attempt: 1, status: "passed", durationMs: 70 }),
          e("test.started", "local", { name: "local", attempt: 1 }),
          e("test.state_changed", "local", {
            machine: "test",
            from: "CREATED",
            to: "SETTING_UP",
            trigger: "attempt 1",
            metadata: { attempt: 1 }
          }),
          e("test.finished", "local", { name: "local", attempt: 1, status: "passed", durationMs: 70 }),
          e("experiment.finished", "run-1", { status: "completed" })
        ])
        assert.deepStrictEqual(
          result(s, "t").attempts.map((a) => [a.status, a.runner, a.host]),
          [
            ["runner_lost", "lab-a:34431", "lab-a"],
            ["passed", "lab-b:34431", "lab-b"]
          ]
        )
        const local = result(s, "local").attempts[0]!
        assert.isFalse("host" in local || "runner" in local, "a local attempt has no host nor runner key")
        // Which host ran each test: a Hosts column in the Markdown report's table of tests, a local test's cell empty.
        const markdown = MarkdownReport.render(s)
        assert.include(markdown, "| Test | Status | Attempts | Duration | Hosts | Logs |")
        assert.include(markdown, "| t | ✅ passed | 2 | 120 ms | lab-a, lab-b |  |")
        assert.include(markdown, "| local | ✅ passed | 1 | 70 ms |  |  |")
        // And in the HTML report: each test's line and each attempt.
        const html = HtmlReport.render(s)
        assert.include(html, `<span class="meta">2 attempts · 120 ms · on lab-a, lab-b</span>`)
        assert.match(html, /attempt 1: .*? 50 ms on lab-a/)
      })
  )

  it.effect("a cluster attempt whose runner was lost is kept beside its re-run, which decides the test", () =>
    Effect.gen(function* () {
      const e = builder()
      const s = yield* fold([
        e("experiment.started", "run-1", { name: "run" }),
        e("test.registered", "t", { name: "t", participants }),
        e("test.registered", "u", { name: "u", participants }),
        e("test.started", "t", { name: "t", attempt: 1 }),
        e("test.finished", "t", {
          name: "t",
          attempt: 1,
          status: "runner_lost",
          durationMs: 50,
          errorMessage: "runner r1 (h1) stopped during the attempt; re-run on r2",
          willRetry: true
        }),
        // The re-run keeps the attempt's number.
        e("test.started", "t", { name: "t", attempt: 1 }),
        e("test.finished", "t", { name: "t", attempt: 1, status: "passed", durationMs: 70 }),
        e("test.finished", "u", {
          name: "u",
          attempt: 1,
          status: "unschedulable",
          durationMs: 0,
          errorMessage: "no runner has labels: quic",
          missingLabels: ["quic"]
        }),
        e("experiment.finished", "run-1", { status: "failed" })
      ])
      const t = result(s, "t")
      assert.strictEqual(t.status, "passed")
      assert.strictEqual(t.retries, 0)
      assert.deepStrictEqual(
        t.attempts.map((a) => [a.attempt, a.status]),
        [
          [1, "runner_lost"],
          [1, "passed"]
        ]
      )
      assert.strictEqual(result(s, "u").status, "unschedulable")
      assert.strictEqual(s.tests.unschedulable, 1)
      assert.strictEqual(s.report_metadata.events_invalid, 0)
    })
  )

  it.effect("a summary written before the cluster statuses existed still decodes (their counts are 0)", () =>
    Effect.gen(function* () {
      const e = builder()
      const s = yield* fold([e("experiment.started", "run-1", { name: "run" })])
      const encoded = Schema.encodeSync(Schema.toCodecJson(ExperimentSummaryTests))(s.tests) as Record<string, unknown>
      delete encoded.unschedulable
      delete encoded.runner_lost
      const decoded = Schema.decodeUnknownSync(Schema.toCodecJson(ExperimentSummaryTests))(encoded)
      assert.strictEqual(decoded.unschedulable, 0)
      assert.strictEqual(decoded.runner_lost, 0)
    })
  )

  it.effect("unsupported is kept apart from failed, and names the service that declared it", () =>
    Effect.gen(function* () {
      const e = builder()
      const s = yield* fold([
        e("test.registered", "u", { name: "u", participants }),
        e("test.started", "u", { name: "u", attempt: 1 }),
        e("service.started", "u/server", { test: "u", service: "server", implementation: "picoquic", type: "iut" }),
        e("service.exited", "u/server", {
          test: "u",
          service: "server",
          exitCode: 127,
          signal: null,
          crashed: false,
          unsupported: true
        }),
        e("test.finished", "u", { name: "u", attempt: 1, status: "unsupported", durationMs: 5 }),
        e("experiment.finished", "run", { status: "completed" })
      ])
      assert.strictEqual(result(s, "u").status, "unsupported")
      assert.deepStrictEqual(result(s, "u").unsupported_by, ["server"])
      assert.strictEqual(s.tests.unsupported, 1)
      assert.strictEqual(s.tests.failed, 0)
      assert.strictEqual(s.tests.success_rate, 0)
      assert.isTrue(s.services[0]!.unsupported)
      assert.strictEqual(s.services[0]!.exit_code, 127)
    })
  )

  it.effect(
    "a log that ends mid-test gives an interrupted run: the running attempt interrupted, the rest skipped",
    () =>
      Effect.gen(function* () {
        const e = builder()
        const s = yield* fold([
          e("experiment.started", "run", { name: "run" }),
          e("test.registered", "a", { name: "a", participants }),
          e("test.registered", "b", { name: "b", participants }),
          e("test.started", "a", { name: "a", attempt: 1 }),
          e("test.state_changed", "a", {
            machine: "test",
            from: "CREATED",
            to: "EXECUTING_STEPS",
            trigger: "go",
            metadata: {}
          }),
          e("step.started", "a/step/0", { test: "a", index: 0, kind: "wait" }, 900)
        ])
        assert.strictEqual(s.status, "interrupted")
        assert.strictEqual(s.end_time, "2026-01-01T00:00:00.900Z")
        const a = result(s, "a")
        assert.strictEqual(a.status, "interrupted")
        assert.strictEqual(a.attempts[0]!.finished, false)
        assert.strictEqual(a.attempts[0]!.duration_ms, 600)
        assert.strictEqual(a.attempts[0]!.steps[0]!.status, "running")
        assert.include(a.error_message ?? "", "EXECUTING_STEPS")
        assert.strictEqual(result(s, "b").status, "skipped")
        assert.strictEqual(s.tests.interrupted + s.tests.skipped, 2)
      })
  )

  it.effect("a retry announced but never started is interrupted, not the failure before it", () =>
    Effect.gen(function* () {
      const e = builder()
      const s = yield* fold([
        e("test.started", "r", { name: "r", attempt: 1 }),
        e("test.finished", "r", { name: "r", attempt: 1, status: "failed", durationMs: 5, willRetry: true })
      ])
      assert.strictEqual(result(s, "r").status, "interrupted")
    })
  )

  it.effect("skips and counts events of unknown types and events that do not decode", () =>
    Effect.gen(function* () {
      const e = builder()
      const s = yield* fold([
        e("test.registered", "t", { name: "t", participants }),
        e("probe.sent", "p1", { target: "a1" }),
        e("hologram.projected", "h", {}),
        e("test.finished", "t", { name: "t", attempt: "first" }),
        e("test.started", "t", { name: "t", attempt: 1 }),
        e("test.finished", "t", { name: "t", attempt: 1, status: "passed", durationMs: 1 })
      ])
      assert.strictEqual(s.report_metadata.events_total, 6)
      assert.strictEqual(s.report_metadata.events_unknown, 2)
      assert.deepStrictEqual(s.report_metadata.unknown_event_types, ["hologram.projected", "probe.sent"])
      assert.strictEqual(s.report_metadata.events_invalid, 1)
      assert.strictEqual(result(s, "t").status, "passed")
    })
  )

  it.effect("builds the matrix from declared positions, in first-seen order, worst status per cell", () =>
    Effect.gen(function* () {
      const e = builder()
      const events = [] as Array<Event.Event>
      const cells = [
        ["x1", "picoquic", "quant", "passed"],
        ["x2", "quant", "quant", "failed"],
        ["x3", "picoquic", "picoquic", "passed"],
        ["x4", "picoquic", "quant", "timeout"]
      ] as const
      for (const [name, row, column, status] of cells) {
        events.push(e("test.registered", name, { name, participants, matrix: { row, column } }))
        events.push(e("test.started", name, { name, attempt: 1 }))
        events.push(e("test.finished", name, { name, attempt: 1, status, durationMs: 1 }))
      }
      const s = yield* fold(events)
      assert.strictEqual(s.matrices.length, 1)
      const [matrix] = s.matrices
      assert.deepStrictEqual(matrix?.rows, ["picoquic", "quant"])
      assert.deepStrictEqual(matrix?.columns, ["quant", "picoquic"])
      assert.deepStrictEqual(
        matrix?.cells.map((c) => [c.row, c.column, c.tests, c.status]),
        [
          ["picoquic", "quant", ["x1", "x4"], "timeout"],
          ["picoquic", "picoquic", ["x3"], "passed"],
          ["quant", "quant", ["x2"], "failed"]
        ]
      )
      // Rows are not always the server's implementation (the quant row's server is picoquic): no axis names.
      assert.strictEqual(matrix?.row_axis, null)
      assert.strictEqual(matrix?.column_axis, null)
    })
  )

  it.effect("two matrices over the same implementations are two grids, not one cell of ×2", () =>
    Effect.gen(function* () {
      const e = builder()
      const pair = [
        { service: "server", implementation: "echo", type: "iut", role: "server" },
        { service: "client", implementation: "echo", type: "iut", role: "client" }
      ]
      const events = [] as Array<Event.Event>
      const tests = [
        // Named the way experiments names matrix tests: the matrix's name comes from the test's name.
        ["m1 [echo server, echo client]", { row: "echo", column: "echo" }, "passed"],
        ["m2 [echo server, echo client]", { row: "echo", column: "echo" }, "failed"],
        // A newer log names its matrix in the event: that name wins.
        ["handshake", { row: "echo", column: "echo", name: "named" }, "passed"]
      ] as const
      for (const [name, matrix, status] of tests) {
        events.push(e("test.registered", name, { name, participants: pair, matrix }))
        events.push(e("test.started", name, { name, attempt: 1 }))
        events.push(e("test.finished", name, { name, attempt: 1, status, durationMs: 1 }))
      }
      const s = yield* fold(events)
      assert.deepStrictEqual(
        s.matrices.map((m) => [m.name, m.row_axis, m.column_axis, m.cells.map((c) => [c.tests, c.status])]),
        [
          ["m1", "server", "client", [[["m1 [echo server, echo client]"], "passed"]]],
          ["m2", "server", "client", [[["m2 [echo server, echo client]"], "failed"]]],
          ["named", "server", "client", [[["handshake"], "passed"]]],
          // Grids over the same servers and clients (an interop run's per-case grids) get a summary after them.
          [
            "summary: all cases",
            "server",
            "client",
            [[["m1 [echo server, echo client]", "m2 [echo server, echo client]", "handshake"], "failed"]]
          ]
        ]
      )
      assert.deepStrictEqual(result(s, "handshake").matrix, { row: "echo", column: "echo", name: "named" })
    })
  )

  it.effect("keeps every service state change with the attempt it happened in", () =>
    Effect.gen(function* () {
      const e = builder()
      const move = (from: string, to: string) =>
        e("service.state_changed", "t/server", { machine: "service", from, to, trigger: "x", metadata: {} })
      const s = yield* fold([
        e("test.started", "t", { name: "t", attempt: 1 }),
        move("CREATED", "RUNNING"),
        move("RUNNING", "ERROR"),
        e("test.finished", "t", { name: "t", attempt: 1, status: "failed", durationMs: 1, willRetry: true }),
        e("test.started", "t", { name: "t", attempt: 2 }),
        move("CREATED", "RUNNING"),
        move("RUNNING", "DESTROYED"),
        e("test.finished", "t", { name: "t", attempt: 2, status: "passed", durationMs: 1 })
      ])
      const server = s.services[0]!
      assert.strictEqual(server.test, "t")
      assert.strictEqual(server.service_name, "server")
      assert.strictEqual(server.status, "DESTROYED")
      assert.deepStrictEqual(
        server.state_history.map((c) => [c.attempt, c.to]),
        [
          [1, "RUNNING"],
          [1, "ERROR"],
          [2, "RUNNING"],
          [2, "DESTROYED"]
        ]
      )
      assert.deepStrictEqual(result(s, "t").services, ["server"])
    })
  )

  it.effect("folds a live stream from the event bus until the experiment finishes", () =>
    Effect.gen(function* () {
      const bus = yield* EventBus.EventBus
      const events = yield* bus.subscribe
      const folding = yield* Effect.forkChild(
        Collector.fold(Stream.takeUntil(events, (e) => e.type === "experiment.finished"))
      )
      yield* bus.emit({
        type: "experiment.started",
        entityId: "live",
        data: { name: "live" }
      })
      yield* bus.emit({ type: "test.registered", entityId: "t", data: { name: "t", participants } })
      yield* bus.emit({ type: "test.started", entityId: "t", data: { name: "t", attempt: 1 } })
      yield* bus.emit({
        type: "test.finished",
        entityId: "t",
        data: { name: "t", attempt: 1, status: "passed", durationMs: 3 }
      })
      yield* bus.emit({
        type: "experiment.finished",
        entityId: "live",
        data: { status: "completed" }
      })
      const s = yield* Fiber.join(folding)
      assert.strictEqual(s.experiment_id, "live")
      assert.strictEqual(s.status, "completed")
      assert.strictEqual(result(s, "t").status, "passed")
      assert.strictEqual(s.report_metadata.events_total, 5)
    }).pipe(Effect.provide(EventBus.EventBus.layer))
  )

  // Any sequence of test events, in any order, with duplicates, unknown types and a missing end.
  const Op = Schema.Struct({
    test: Schema.Literals(["alpha", "beta", "gamma", "delta", "epsilon"]),
    op: Schema.Literals(["register", "start", "finish", "artifact", "service", "unknown", "invalid"]),
    attempt: Schema.Literals([1, 2, 3]),
    status: Schema.Literals(["passed", "failed", "skipped", "timeout", "interrupted", "unsupported"]),
    willRetry: Schema.Boolean
  })

  const toEvents = (ops: ReadonlyArray<typeof Op.Type>, finished: boolean) => {
    const e = builder()
    const events = ops.map(({ attempt, op, status, test, willRetry }): Event.Event => {
      switch (op) {
        case "register":
          return e("test.registered", test, { name: test, participants, matrix: { row: test, column: status } })
        case "start":
          return e("test.started", test, { name: test, attempt })
        case "finish":
          return e("test.finished", test, { name: test, attempt, status, durationMs: 10, willRetry })
        case "artifact":
          return e("test.artifact", test, { name: "log", kind: "log", path: `logs/${test}.log` })
        case "service":
          return e("service.exited", `${test}/server`, {
            test,
            service: "server",
            exitCode: 1,
            signal: null,
            crashed: false
          })
        case "unknown":
          return e("test.teleported", test, {})
        default:
          // "invalid": a known type whose payload does not decode.
          return e("test.finished", test, { name: test })
      }
    })
    return finished ? [...events, e("experiment.finished", "run", { status: "completed" })] : events
  }

  it.effect.prop(
    "for any event sequence the counts add up and every test appears exactly once",
    [Schema.Array(Op), Schema.Boolean],
    ([ops, finished]) =>
      Effect.gen(function* () {
        const events = toEvents(ops, finished)
        const s = yield* fold(events)
        const named = new Set(ops.filter((o) => o.op !== "unknown" && o.op !== "invalid").map((o) => o.test))
        const names = s.tests.results.map((r) => r.name)
        assert.strictEqual(names.length, new Set(names).size, "no test twice")
        assert.deepStrictEqual(new Set(names), named)
        assert.strictEqual(s.tests.total, names.length)
        assert.strictEqual(
          statuses.reduce((sum, st) => sum + s.tests[st], 0),
          s.tests.total
        )
        for (const st of statuses) {
          assert.strictEqual(s.tests[st], s.tests.results.filter((r) => r.status === st).length)
        }
        assert.isTrue(s.tests.success_rate >= 0 && s.tests.success_rate <= 100)
        assert.strictEqual(s.report_metadata.events_total, events.length)
        assert.strictEqual(s.report_metadata.events_unknown, ops.filter((o) => o.op === "unknown").length)
        assert.strictEqual(s.report_metadata.events_invalid, ops.filter((o) => o.op === "invalid").length)
        assert.strictEqual(s.status, finished ? "completed" : "interrupted")
        // Every renderer accepts every summary, and the JSON reads back to the same summary.
        for (const format of ReportWriter.formats) assert.isString(ReportWriter.render(s, format))
        assert.deepStrictEqual(yield* JsonReport.decode(JsonReport.render(s)), s)
      }),
    { timeout: 60_000, arbitrary: { runs: 200 } }
  )
})
