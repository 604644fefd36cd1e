import { spawnSync } from "node:child_process"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { fixtures, renderFixture, required, scenarios, xmllintPresent } from "./support.ts"

const xsd = `${fixtures}junit.xsd`

const xmllint = (...args: ReadonlyArray<string>) =>
  Effect.sync(() => {
    const run = spawnSync("xmllint", args, { encoding: "utf8" })
    if (run.error !== undefined) throw run.error
    return { status: run.status, stdout: run.stdout, stderr: run.stderr }
  })

// Runs whenever xmllint is installed, and always under CI=true, where a missing xmllint fails the test.
describe.runIf(required(xmllintPresent))("JUnitReport (xmllint, fixtures/reports/junit.xsd)", () => {
  for (const scenario of scenarios) {
    it.live(`the ${scenario} report validates against the Jenkins JUnit schema`, () =>
      Effect.gen(function* () {
        const { dir } = yield* renderFixture(scenario)
        const run = yield* xmllint("--noout", "--schema", xsd, `${dir}/junit.xml`)
        assert.strictEqual(run.status, 0, run.stderr)
        assert.include(run.stderr, "validates")
      }).pipe(Effect.provide(NodeServices.layer))
    )
  }

  it.live("the schema is really applied: a testsuite without its failures count is rejected", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-junit-" })
      yield* fs.writeFileString(
        `${dir}/bad.xml`,
        '<testsuites><testsuite name="x" tests="1" errors="0"><testcase name="a"/></testsuite></testsuites>'
      )
      const run = yield* xmllint("--noout", "--schema", xsd, `${dir}/bad.xml`)
      assert.notStrictEqual(run.status, 0)
      assert.include(run.stderr, "failures")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.live("log tails with hostile bytes read back out of the failure body, system-out and system-err", () =>
    Effect.gen(function* () {
      const { dir } = yield* renderFixture("triage")
      const file = `${dir}/junit.xml`
      const read = (xpath: string) => Effect.map(xmllint("--xpath", xpath, file), (r) => r.stdout)
      const failure = yield* read('string(//testcase[@name="step fails"]/failure)')
      assert.include(failure, "step probe: exit code 3 (expected 0)\n\n--- step probe stdout:")
      assert.include(failure, "handshake failed ]]> </system-err> <script>alert(1)</script> & \\x01\\x02\\x07")
      assert.include(failure, "\uFFFD\uFFFD invalid UTF-8 above; a NUL \\x00 here")
      // The failed step's files are named in system-out, linked by path.
      const stepOut = yield* read('string(//testcase[@name="step fails"]/system-out)')
      assert.include(stepOut, "step 0 failed: tests/step-fails/attempt-1/steps/probe.stderr.log")
      const err = yield* read('string(//testcase[@name="step fails"]/system-err)')
      assert.include(err, "--- step probe stderr: tests/step-fails/attempt-1/steps/probe.stderr.log")
      const out = yield* read('string(//testcase[@name="output mismatch"]/system-out)')
      assert.include(out, "logs: tests/output-mismatch/attempt-1")
      assert.include(out, "echo line 100")
      assert.notInclude(out, "echo line 60\n")
      // An earlier attempt of a flaky test carries its own evidence.
      const flaky = yield* read("string(//flakyFailure/stackTrace)")
      assert.include(flaky, "--- step step0 stderr:")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.live("names and messages full of markup come back out of the XML exactly as they went in", () =>
    Effect.gen(function* () {
      const { dir } = yield* renderFixture("failing")
      const file = `${dir}/junit.xml`
      const name = yield* xmllint("--xpath", "string(//testcase[4]/@name)", file)
      assert.strictEqual(name.stdout.trim(), 'handshake <b>&"quant"</b> | `x`')
      const message = yield* xmllint("--xpath", "string(//testcase[4]/failure/@message)", file)
      assert.include(message.stdout, "<script>alert('x')</script> & ]]> | pipe\n\tat step 1 \\x01\\x1b[31m")
      const scripts = yield* xmllint("--xpath", "count(//script)", file)
      assert.strictEqual(scripts.stdout.trim(), "0")
    }).pipe(Effect.provide(NodeServices.layer))
  )
})

describe("JUnitReport", () => {
  it.effect("retries become flakyFailure when the test passed in the end, rerunFailure when it failed", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const { dir } = yield* renderFixture("retries")
      const xml = yield* fs.readFileString(`${dir}/junit.xml`)
      const testcase = (name: string) => {
        const start = xml.indexOf(`<testcase name="${name}"`)
        return xml.slice(start, xml.indexOf("</testcase>", start))
      }
      assert.include(testcase("0-rtt/quant"), '<flakyFailure message="0-RTT data rejected" type="failed">')
      assert.notInclude(testcase("0-rtt/quant"), "<failure")
      assert.include(testcase("key-update/lsquic"), '<failure message="key update not acknowledged (again)"')
      assert.include(
        testcase("key-update/lsquic"),
        '<rerunFailure message="key update not acknowledged" type="failed">'
      )
      assert.include(
        testcase("0-rtt/lsquic"),
        '<skipped message="unsupported by server: lsquic build has no 0-RTT support" type="unsupported"/>'
      )
      assert.include(xml, 'tests="9" failures="1" errors="0" skipped="2"')
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
