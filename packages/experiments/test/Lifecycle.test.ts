// Integration: services' lifecycle hooks (fixtures/experiments/cases/lifecycle.yaml) on real processes, on this
// machine and in the docker environment: their order around the services' start and end, their own timeouts, and a
// failed hook reported with which service and which hook.
import { readFileSync, writeFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { Experiment } from "../src/index.ts"
import { hasDocker } from "./docker.ts"
import { fixtures, hasProgram, provide, readEvents } from "./support.ts"

/** The fixture, run in `environment` from a copy next to the run (its plugins path made absolute). */
const runIn = (environment: "localhost" | "docker") =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-lifecycle-" })
    const text = readFileSync(`${fixtures}cases/lifecycle.yaml`, "utf8")
      .replace("../../plugins/busybox", `${fixtures}../plugins/busybox`)
      .replace("test_timeout:", `environment: ${environment}\ntest_timeout:`)
    writeFileSync(`${dir}/lifecycle.yaml`, text)
    const outcome = yield* Experiment.run(`${dir}/lifecycle.yaml`, { outputDir: dir, progress: "none", concurrency: 2 })
    const tests = new Map((outcome.result?.tests ?? []).map((test) => [test.name, test]))
    return { outcome, tests, events: readEvents(outcome.runDir) }
  })

const check = (environment: "localhost" | "docker") =>
  Effect.gen(function* () {
    const { outcome, tests, events } = yield* runIn(environment)
    const ordered = tests.get("every hook in order")
    assert.strictEqual(ordered?.status, "passed", ordered?.reason)
    // Order: every prepare, then every pre_run, then the services; post_run once the client has ended.
    const mine = events.filter((event) => event.entityId.startsWith("every hook in order/"))
    const at = (type: string, service: string, hook?: string) =>
      mine.findIndex(
        (event) =>
          event.type === type &&
          "service" in event.data &&
          event.data.service === service &&
          (hook === undefined || ("hook" in event.data && event.data.hook === hook))
      )
    const prepared = at("service.hook_finished", "web", "prepare")
    const checked = at("service.hook_finished", "web", "pre_run")
    const started = at("service.started", "web")
    const fetched = at("service.exited", "fetch")
    const after = at("service.hook_started", "web", "post_run")
    assert.isTrue(prepared >= 0 && prepared < checked && checked < started && fetched < after, "hook order")
    const attempt = `${outcome.runDir}/tests/every-hook-in-order/attempt-1`
    const post = readFileSync(`${attempt}/web/post_run.stdout.log`, "utf8")
    assert.include(post, "built")
    // In docker the hooks ran in the service's node (its hostname is the service's key).
    if (environment === "docker") assert.include(post, "post_run in web")
    // Each failed hook fails its test, naming the service and the hook.
    const failed = (name: string) => tests.get(name)
    assert.strictEqual(failed("prepare fails")?.status, "failed")
    assert.include(failed("prepare fails")?.reason, "prepare fails/web: prepare hook failed: exit code 3: no compiler")
    assert.strictEqual(failed("pre_run fails")?.status, "failed")
    assert.include(failed("pre_run fails")?.reason, "pre_run fails/web: pre_run hook failed: exit code 1")
    assert.strictEqual(failed("post_run fails")?.status, "failed")
    assert.include(failed("post_run fails")?.reason, "post_run fails/web: post_run hook failed: exit code 4")
    assert.strictEqual(failed("pre_run times out")?.status, "timeout")
    assert.include(failed("pre_run times out")?.reason, "pre_run hook timed out: still running after its timeout of 1s")
    // A failed prepare starts no service.
    assert.isFalse(
      events.some((event) => event.type === "service.started" && event.entityId.startsWith("prepare fails/"))
    )
  })

describe("service lifecycle hooks", () => {
  it.live("a hook with both command and shell, or an empty command, is a problem at its YAML path", () =>
    provide(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-lifecycle-plan-" })
        writeFileSync(
          `${dir}/hooks.yaml`,
          `name: bad-hooks\npaths: { plugins: ${fixtures}../plugins/busybox }\ntests:\n  - name: t\n    services:\n` +
            `      web: { implementation: busybox-http, role: server, pre_run: { command: [x], shell: y }, prepare: { command: [] } }\n`
        )
        const error = yield* Effect.flip(Experiment.prepare(`${dir}/hooks.yaml`))
        const problems = new Map(error.problems.map((problem) => [problem.path, problem.message]))
        assert.strictEqual(problems.get("tests[0].services.web.pre_run"), "give exactly one of command and shell")
        assert.strictEqual(problems.get("tests[0].services.web.prepare"), "command is empty")
      })
    )
  )

  it.live.skipIf(!hasProgram("busybox") && process.env.CI === undefined)(
    "on this machine: prepare, pre_run, run, post_run in order; each failure names its hook",
    () => provide(check("localhost")),
    120_000
  )
  it.live.skipIf(!hasDocker && process.env.CI === undefined)(
    "in the docker environment: the same hooks run in the service's node",
    () => provide(check("docker")),
    240_000
  )
})
