import { readdirSync, readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, FileSystem } from "effect"
import { Experiment } from "../src/index.ts"
import { hasDocker, leftovers, stagesOf, upAndWaiting } from "./docker.ts"
import { fixtures, provide, readEvents, runFixture } from "./support.ts"

describe.skipIf(!hasDocker && process.env.CI === undefined)("docker environment", () => {
  it.live("runs the busybox httpd × wget matrix in a stage of containers, then removes it", () =>
    provide(
      Effect.gen(function* () {
        const outcome = yield* runFixture("busybox-http-docker.yaml")
        const [test] = outcome.result!.tests
        assert.strictEqual(test?.status, "passed", test?.reason)
        const events = readEvents(outcome.runDir)
        const types = events.map((event) => event.type)
        for (const type of ["stage.up_started", "stage.up", "stage.down"]) assert.include(types, type)
        const attempt = `${outcome.runDir}/tests/${readdirSync(`${outcome.runDir}/tests`)[0]}/attempt-1`
        const stage = JSON.parse(readFileSync(`${attempt}/stage.json`, "utf8")) as {
          networks: { net: { subnet: string } }
        }
        assert.match(stage.networks.net.subnet, /^10\.2\d\d\.\d+\.0\/24$/)
        const prefix = stage.networks.net.subnet.replace(/\.0\/24$/, "")
        // Each service ran in a container of its own (docker exec), at its own address on the private network.
        const started = events.flatMap((event) => (event.type === "command.started" ? [event.data] : []))
        const runners = started.map((command) => command.runner)
        assert.strictEqual(runners.length, 2)
        for (const runner of runners) assert.match(runner, /^docker:[0-9a-f]{64}$/)
        assert.notStrictEqual(runners[0], runners[1])
        assert.include(started[0]?.args ?? [], `${prefix}.10`)
        assert.include(started[1]?.args ?? [], `http://${prefix}.10:8000/index.html`)
        assert.include(readFileSync(`${attempt}/client/stdout.log`, "utf8"), "hello from busybox")
        for (const name of stagesOf(outcome.runDir)) assert.deepStrictEqual(leftovers(name), [])
      })
    )
  )

  it.live("a run step with service runs in that service's node; without, on this machine", () =>
    provide(
      Effect.gen(function* () {
        const outcome = yield* runFixture("cases/docker.yaml", { filter: "step in the client node" })
        const [test] = outcome.result!.tests
        assert.strictEqual(test?.status, "passed", test?.reason)
        // Services and the `inside` step through a node's exec runner; the `outside` step through the local one.
        const runners = readEvents(outcome.runDir).flatMap((event) =>
          event.type === "command.started" ? [event.data.runner] : []
        )
        assert.strictEqual(runners.length, 4)
        assert.match(String(runners[2]), /^docker:[0-9a-f]{64}$/)
        assert.notMatch(String(runners[3]), /^docker:/)
        const steps = `${outcome.runDir}/tests/${readdirSync(`${outcome.runDir}/tests`)[0]}/attempt-1/steps`
        assert.strictEqual(readFileSync(`${steps}/inside.stdout.log`, "utf8"), "in fetch\n")
        assert.strictEqual(readFileSync(`${steps}/outside.stdout.log`, "utf8"), "not in the node\n")
        const stages = stagesOf(outcome.runDir)
        assert.strictEqual(stages.length, 1)
        for (const name of stages) assert.deepStrictEqual(leftovers(name), [])
      })
    )
  )

  it.live("a failed test leaves no container or network", () =>
    provide(
      Effect.gen(function* () {
        const outcome = yield* runFixture("cases/docker.yaml", { filter: "missing page" })
        const [test] = outcome.result!.tests
        assert.strictEqual(test?.status, "failed")
        assert.include(test?.reason, "fetch (busybox-http) ended with exit code 1")
        const stages = stagesOf(outcome.runDir)
        assert.strictEqual(stages.length, 1)
        for (const name of stages) assert.deepStrictEqual(leftovers(name), [])
      })
    )
  )

  it.live("an interrupted test leaves no container or network", () =>
    provide(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const outputDir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-docker-" })
        const fiber = yield* Effect.forkChild(
          Experiment.run(`${fixtures}cases/docker.yaml`, { outputDir, filter: "hangs", progress: "none" })
        )
        // Interrupt once the stage is up and the test sits in its step.
        const stages = stagesOf(yield* upAndWaiting(outputDir, "60 seconds"))
        assert.strictEqual(stages.length, 1)
        assert.isAbove(leftovers(stages[0]!).length, 0)
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(leftovers(stages[0]!), [])
      })
    )
  )
})
