import { createServer, type IncomingMessage } from "node:http"
import { readFileSync, writeFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Schema } from "effect"
import { Experiment } from "../src/index.ts"
import { provide } from "./support.ts"

// The parts of OTLP/JSON `ExportTraceServiceRequest` this test reads (opentelemetry-proto, trace/v1).
const AnyValue = Schema.Struct({
  stringValue: Schema.optionalKey(Schema.String),
  intValue: Schema.optionalKey(Schema.Union([Schema.String, Schema.Finite])),
  boolValue: Schema.optionalKey(Schema.Boolean)
})
const KeyValue = Schema.Struct({ key: Schema.String, value: AnyValue })
const Span = Schema.Struct({
  traceId: Schema.String,
  spanId: Schema.String,
  parentSpanId: Schema.optionalKey(Schema.String),
  name: Schema.String,
  attributes: Schema.optionalKey(Schema.Array(KeyValue)),
  events: Schema.optionalKey(
    Schema.Array(Schema.Struct({ name: Schema.String, attributes: Schema.optionalKey(Schema.Array(KeyValue)) }))
  ),
  status: Schema.optionalKey(Schema.Struct({ code: Schema.optionalKey(Schema.Finite) }))
})
type Span = typeof Span.Type
const ExportTraceServiceRequest = Schema.Struct({
  resourceSpans: Schema.Array(
    Schema.Struct({
      resource: Schema.optionalKey(Schema.Struct({ attributes: Schema.optionalKey(Schema.Array(KeyValue)) })),
      scopeSpans: Schema.Array(Schema.Struct({ spans: Schema.Array(Span) }))
    })
  )
})
const decodeRequest = Schema.decodeUnknownSync(Schema.fromJsonString(ExportTraceServiceRequest))

const bodyOf = (request: IncomingMessage) =>
  new Promise<string>((resolve) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
  })

/** An OTLP/HTTP receiver on loopback: every span of every POST to /v1/traces, decoded. */
const receiver = Effect.acquireRelease(
  Effect.callback<{ readonly url: string; readonly spans: Array<Span>; readonly close: () => void }>((resume) => {
    const spans: Array<Span> = []
    const server = createServer((request, response) => {
      void bodyOf(request).then((body) => {
        if (request.method === "POST" && request.url === "/v1/traces") {
          for (const resource of decodeRequest(body).resourceSpans)
            for (const scope of resource.scopeSpans) spans.push(...scope.spans)
        }
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}/v1/traces`, spans, close: () => server.close() }))
    })
  }),
  (r) => Effect.sync(() => r.close())
)

const attribute = (span: Span | undefined, key: string) =>
  span?.attributes?.find((kv) => kv.key === key)?.value.stringValue

describe("run trace", () => {
  it.live(
    "--otlp exports one trace per run: experiment → test → attempt → service and step, failures as events",
    () =>
      provide(
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-otlp-" })
          const otlp = yield* receiver
          const file = `${dir}/traced.yaml`
          writeFileSync(
            file,
            [
              "name: traced",
              "tests:",
              "  - name: passes",
              "    services:",
              "      client: { implementation: exec, role: client, parameters: { program: 'true' } }",
              "    steps:",
              "      - run: { name: probe, command: ['true'] }",
              "  - name: fails",
              "    services:",
              "      client: { implementation: exec, role: client, parameters: { program: 'false' } }",
              ""
            ].join("\n")
          )
          const outcome = yield* Experiment.run(file, { outputDir: dir, progress: "none", otlp: otlp.url })
          const spans = otlp.spans
          const traceIds = new Set(spans.map((span) => span.traceId))
          assert.strictEqual(traceIds.size, 1, "one trace per run")
          const byName = (name: string) => spans.filter((span) => span.name === name)
          const [root] = byName("experiment traced")
          assert.isDefined(root)
          assert.isTrue(root?.parentSpanId === undefined || root.parentSpanId === "")
          const parentOf = (span: Span | undefined) => spans.find((other) => other.spanId === span?.parentSpanId)
          for (const test of ["passes", "fails"]) {
            const [testSpan] = byName(`test ${test}`)
            assert.strictEqual(parentOf(testSpan)?.spanId, root?.spanId, `test ${test} under the experiment`)
            const attempt = spans.find((span) => span.name === "attempt 1" && span.parentSpanId === testSpan?.spanId)
            assert.isDefined(attempt, `attempt of ${test}`)
            const service = spans.find(
              (span) => span.name === "service client" && span.parentSpanId === attempt?.spanId
            )
            assert.strictEqual(attribute(service, "testbed.implementation"), "exec")
            assert.strictEqual(attribute(attempt, "testbed.status"), test === "passes" ? "passed" : "failed")
          }
          const step = byName("step 0 run")[0]
          assert.strictEqual(parentOf(parentOf(step))?.name, "test passes")
          const failedAttempt = spans.find(
            (span) => span.name === "attempt 1" && attribute(span, "testbed.status") === "failed"
          )
          assert.strictEqual(failedAttempt?.status?.code, 2, "an error span")
          const failure = failedAttempt?.events?.find((event) => event.name === "failure")
          assert.match(failure?.attributes?.find((kv) => kv.key === "reason")?.value.stringValue ?? "", /exit code 1/)
          const summary = JSON.parse(readFileSync(`${outcome.runDir}/experiment_summary.json`, "utf8"))
          assert.strictEqual(summary.trace_id, root?.traceId)
          assert.include(readFileSync(`${outcome.runDir}/report.html`, "utf8"), root?.traceId ?? "no trace")
        })
      ),
    60_000
  )
})
