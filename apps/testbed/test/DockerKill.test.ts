// The CLI-level check of the docker environment (moved from packages/experiments, whose tests do not spawn the
// app): a `testbed run` SIGKILLed with its stage up leaves containers only until the next run removes them.
import { execFileSync, spawn } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Experiment } from "@testbed/experiments"
import { type Duration, Effect, FileSystem, Schedule } from "effect"
import { bin } from "./support.ts"

const fixtures = fileURLToPath(new URL("../../../fixtures/experiments/", import.meta.url))

const docker = (args: ReadonlyArray<string>): string => execFileSync("docker", args, { encoding: "utf8" }).trim()

/** Whether an engine answers. Without one this test skips locally and fails in CI (CI=true). */
const hasDocker = (() => {
  try {
    docker(["info", "--format", "{{.ServerVersion}}"])
    return true
  } catch {
    return false
  }
})()

/** The stage names the attempts of a run used (each attempt records its definition in stage.json). */
const stagesOf = (runDir: string): ReadonlyArray<string> =>
  readdirSync(`${runDir}/tests`).flatMap((test) =>
    readdirSync(`${runDir}/tests/${test}`).flatMap((attempt) => {
      const file = `${runDir}/tests/${test}/${attempt}/stage.json`
      return existsSync(file) ? [(JSON.parse(readFileSync(file, "utf8")) as { name: string }).name] : []
    })
  )

/** Containers and networks of a stage still on the engine. */
const leftovers = (stage: string): ReadonlyArray<string> =>
  [
    ...docker(["ps", "-a", "--filter", `label=testbed.stage=${stage}`, "--format", "{{.Names}}"]).split("\n"),
    ...docker(["network", "ls", "--filter", `label=testbed.stage=${stage}`, "--format", "{{.Name}}"]).split("\n")
  ].filter((line) => line !== "")

/** The run directory under `outputDir`, once its stage is up and its test sits in a step. */
const upAndWaiting = (outputDir: string, timeout: Duration.Input) =>
  Effect.sync(() => {
    const dir = readdirSync(outputDir).map((name) => `${outputDir}/${name}`)[0]
    if (dir === undefined || !existsSync(`${dir}/events.jsonl`)) return undefined
    const log = readFileSync(`${dir}/events.jsonl`, "utf8")
    return log.includes(`"stage.up"`) && log.includes(`"step.started"`) ? dir : undefined
  }).pipe(
    Effect.repeat({ until: (dir) => dir !== undefined, schedule: Schedule.spaced("100 millis") }),
    Effect.timeout(timeout),
    Effect.map((dir) => dir as string)
  )

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
