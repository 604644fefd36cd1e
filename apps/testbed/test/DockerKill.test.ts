// The CLI-level check of the docker environment (moved from packages/experiments, whose tests do not spawn the
// app): a `testbed run` SIGKILLed with its stage up leaves containers only until the next run removes them.
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Experiment } from "@testbed/experiments"
import { Effect, FileSystem } from "effect"
// The docker helpers of the experiments package's tests (the same stages, the same engine).
import { hasDocker, leftovers, stagesOf, upAndWaiting } from "../../../packages/experiments/test/docker.ts"
import { bin } from "./support.ts"

const fixtures = fileURLToPath(new URL("../../../fixtures/experiments/", import.meta.url))

describe.skipIf(!hasDocker && process.env.CI === undefined)("testbed run in the docker environment", () => {
  it.live(
    "a SIGKILLed `testbed run` leaves its containers only until the next run removes them",
    () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const outputDir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-docker-killed-" })
        // The real Node binary (node_modules/.bin/node is a shell wrapper), running the CLI as a user does.
        const child = spawn(
          process.execPath,
          [bin, "run", `${fixtures}cases/docker.yaml`, "--filter", "hangs", "--output-dir", outputDir, "--plain"],
          { stdio: "ignore" }
        )
        const exited = new Promise((resolve) => child.on("exit", resolve))
        yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
        const [stage] = stagesOf(yield* upAndWaiting(outputDir, "120 seconds"))
        assert.isDefined(stage)
        assert.isAbove(leftovers(stage!).length, 0)
        child.kill("SIGKILL")
        yield* Effect.promise(() => exited)
        // The next run (any experiment with the docker environment) removes what the killed one left.
        const nextDir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-docker-next-" })
        const next = yield* Experiment.run(`${fixtures}cases/docker.yaml`, {
          outputDir: nextDir,
          filter: "missing page",
          progress: "none"
        })
        assert.strictEqual(next.result?.tests[0]?.status, "failed")
        assert.deepStrictEqual(leftovers(stage!), [])
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    300_000
  )
})
