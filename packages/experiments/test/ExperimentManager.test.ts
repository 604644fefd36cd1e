import { existsSync, readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ExperimentManager } from "../src/index.ts"
import { hasProgram, hasTlsTools, provide, readEvents, runFixture } from "./support.ts"

const summaryOf = (runDir: string) => JSON.parse(readFileSync(`${runDir}/experiment_summary.json`, "utf8"))

// Integration: real processes. The manager's logic (experiment timeout, retries and flaky, fast-fail, --filter and
// --retries) is unit-tested on a fake environment and TestClock in Harness.test.ts.
describe("ExperimentManager", () => {
  it.live("runs the quickstart: every test passes, every event fits its schema, reports are written", () =>
    provide(
      Effect.gen(function* () {
        const outcome = yield* runFixture("quickstart.yaml")
        const result = outcome.result!
        assert.strictEqual(result.status, "completed")
        assert.isTrue(ExperimentManager.succeeded(result))
        assert.deepStrictEqual(
          result.tests.map((test) => [test.name, test.status]),
          [
            ["echo round trip", "passed"],
            ["server log shows the connection", "passed"],
            ["echo matrix [node-echo server, node-echo client]", "passed"],
            ["echo matrix [node-echo server, exec client]", "passed"]
          ]
        )
        const events = readEvents(outcome.runDir)
        const types = new Set(events.map((event) => event.type))
        for (const type of [
          "experiment.started",
          "experiment.state_changed",
          "test.registered",
          "test.started",
          "test.state_changed",
          "service.started",
          "service.state_changed",
          "service.exited",
          "step.started",
          "step.finished",
          // Step commands go through a CommandRunner, which publishes their command.* events.
          "command.started",
          "command.completed",
          "assertion.checked",
          "test.artifact",
          "test.finished",
          "experiment.finished"
        ]) {
          assert.isTrue(types.has(type as never), `missing ${type}`)
        }
        const registered = events.find((e) => e.type === "test.registered" && e.data.name.startsWith("echo matrix"))
        assert.deepStrictEqual(registered?.type === "test.registered" ? registered.data.matrix : undefined, {
          row: "node-echo",
          column: "node-echo"
        })
        const testMoves = events.flatMap((e) =>
          e.type === "test.state_changed" && e.entityId === "echo round trip" ? [e.data.to] : []
        )
        assert.deepStrictEqual(testMoves, [
          "SETTING_UP",
          "SETTING_UP_SERVICES",
          "SERVICES_SETUP",
          "SETTING_UP_ENVIRONMENT",
          "ENVIRONMENT_SETUP",
          "DEPLOYING",
          "DEPLOYED",
          "EXECUTING",
          "EXECUTING_STEPS",
          "VALIDATING_ASSERTIONS",
          "TEARING_DOWN",
          "COMPLETED"
        ])
        const serverMoves = events.flatMap((e) =>
          e.type === "service.state_changed" && e.entityId === "echo round trip/server" ? [e.data.to] : []
        )
        assert.deepStrictEqual(serverMoves, [
          "PREPARING",
          "PREPARED",
          "DEPLOYING",
          "DEPLOYED",
          "STARTING",
          "RUNNING",
          "READY",
          "STOPPING",
          "STOPPED",
          "DESTROYED"
        ])
        assert.isTrue(
          readFileSync(`${outcome.runDir}/tests/echo-round-trip/attempt-1/client/stdout.log`, "utf8").includes(
            "echo ok: 5 messages"
          )
        )
        assert.isDefined(outcome.html)
        for (const file of ["report.html", "EXPERIMENT_REPORT.md", "experiment_summary.json", "junit.xml"]) {
          assert.isTrue(existsSync(`${outcome.runDir}/${file}`), file)
        }
        assert.strictEqual(summaryOf(outcome.runDir).tests.passed, 4)
      })
    )
  )

  it.live.skipIf(!hasTlsTools && process.env.CI === undefined)(
    "runs the OpenSSL × GnuTLS matrix: four verified handshakes, one matrix cell each",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("tls-interop.yaml")
          const result = outcome.result!
          assert.deepStrictEqual(
            result.tests.map((test) => test.status),
            ["passed", "passed", "passed", "passed"]
          )
          const cells = readEvents(outcome.runDir).flatMap((e) =>
            e.type === "test.registered" && e.data.matrix !== undefined
              ? [`${e.data.matrix.row}/${e.data.matrix.column}`]
              : []
          )
          assert.deepStrictEqual(cells, ["openssl/openssl", "openssl/gnutls", "gnutls/openssl", "gnutls/gnutls"])
          assert.isTrue(existsSync(`${outcome.runDir}/certs/cert.pem`))
          const keylogs = readEvents(outcome.runDir).filter(
            (e) => e.type === "test.artifact" && e.data.kind === "keylog"
          )
          assert.isTrue(keylogs.length >= 4)
        })
      )
  )

  it.live.skipIf(!hasTlsTools && process.env.CI === undefined)(
    "OpenSSL's server × the node-echo client fails: the client checks the echo it claims",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("cases/no-echo.yaml")
          const [test] = outcome.result!.tests
          assert.strictEqual(test?.status, "failed")
          assert.match(test?.reason ?? "", /client \(node-echo\) ended with exit code 1/)
        })
      )
  )

  it.live("a crashing server fails its test with the reason while the other test passes", () =>
    provide(
      Effect.gen(function* () {
        const outcome = yield* runFixture("cases/crash.yaml")
        const byName = new Map(outcome.result!.tests.map((test) => [test.name, test]))
        assert.strictEqual(byName.get("healthy pair")?.status, "passed")
        assert.strictEqual(byName.get("crashing server")?.status, "failed")
        assert.strictEqual(byName.get("crashing server")?.reason, "server (exec) ended on its own: exit code 3")
        const events = readEvents(outcome.runDir)
        const exited = events.find((e) => e.type === "service.exited" && e.entityId === "crashing server/server")
        assert.deepStrictEqual(exited?.data, {
          test: "crashing server",
          service: "server",
          exitCode: 3,
          signal: null,
          crashed: true
        })
        const client = events.find((e) => e.type === "service.exited" && e.entityId === "crashing server/client")
        assert.strictEqual(client?.type === "service.exited" ? client.data.signal : undefined, "SIGTERM")
        assert.isFalse(ExperimentManager.succeeded(outcome.result!))
      })
    )
  )

  it.live("hung services time out at the service, readiness and test levels with status timeout", () =>
    provide(
      Effect.gen(function* () {
        const outcome = yield* runFixture("cases/hang.yaml")
        const byName = new Map(outcome.result!.tests.map((test) => [test.name, test]))
        assert.strictEqual(byName.get("never ready")?.status, "timeout")
        assert.match(
          byName.get("never ready")?.reason ?? "",
          /not ready after 1s: port 127\.0\.0\.1:\d+ not listening \(probe: the kernel's socket table/
        )
        assert.strictEqual(byName.get("hung client")?.status, "timeout")
        assert.match(byName.get("hung client")?.reason ?? "", /^test timed out after 2s \(in [A-Z_]+\)$/)
        assert.strictEqual(byName.get("slow task")?.status, "timeout")
        assert.include(byName.get("slow task")?.reason ?? "", "still running after its timeout of 1s")
        const exits = readEvents(outcome.runDir).filter((e) => e.type === "service.exited")
        assert.strictEqual(exits.length, 3)
      })
    )
  )

  it.live.skipIf(!hasProgram("busybox") && process.env.CI === undefined)(
    "runs an out-of-tree plugin named in paths.plugins (BusyBox httpd + wget), probing the server over HTTP",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("busybox-http.yaml")
          assert.deepStrictEqual(
            outcome.result!.tests.map((test) => [test.name, test.status, test.reason]),
            [["wget fetches the page", "passed", undefined]]
          )
          const checks = readEvents(outcome.runDir).flatMap((e) =>
            e.type === "assertion.checked" ? [e.data.message] : []
          )
          assert.isTrue(
            checks.some((message) => /^GET http:\/\/127\.0\.0\.1:\d+\/index\.html: status 200$/.test(message ?? "")),
            checks.join("\n")
          )
        })
      )
  )

  it.live("a server is ready once its readiness command succeeds, not before", () =>
    provide(
      Effect.gen(function* () {
        const outcome = yield* runFixture("cases/readiness.yaml")
        assert.deepStrictEqual(
          outcome.result!.tests.map((test) => [test.status, test.reason]),
          [["passed", undefined]]
        )
        const moves = readEvents(outcome.runDir).flatMap((e) =>
          e.type === "service.state_changed" && e.entityId === "ready by probe/server" && e.data.to === "READY"
            ? [e.data.metadata]
            : []
        )
        assert.deepStrictEqual(moves, [{ readiness: "command" }])
      })
    )
  )
})
