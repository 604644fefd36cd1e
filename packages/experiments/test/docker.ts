// What the docker tests share: the engine through its CLI, whether one answers, and what a run's stages left on it.
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { type Duration, Effect, Schedule } from "effect"

export const docker = (args: ReadonlyArray<string>): string => execFileSync("docker", args, { encoding: "utf8" }).trim()

/** Whether an engine answers. Without one the docker tests skip locally and fail in CI (CI=true). */
export const hasDocker = (() => {
  try {
    docker(["info", "--format", "{{.ServerVersion}}"])
    return true
  } catch {
    return false
  }
})()

/** The stage names the attempts of a run used (each attempt records its definition in stage.json). */
export const stagesOf = (runDir: string): ReadonlyArray<string> =>
  readdirSync(`${runDir}/tests`).flatMap((test) =>
    readdirSync(`${runDir}/tests/${test}`).flatMap((attempt) => {
      const file = `${runDir}/tests/${test}/${attempt}/stage.json`
      return existsSync(file) ? [(JSON.parse(readFileSync(file, "utf8")) as { name: string }).name] : []
    })
  )

/** Containers and networks of a stage still on the engine. */
export const leftovers = (stage: string): ReadonlyArray<string> =>
  [
    ...docker(["ps", "-a", "--filter", `label=testbed.stage=${stage}`, "--format", "{{.Names}}"]).split("\n"),
    ...docker(["network", "ls", "--filter", `label=testbed.stage=${stage}`, "--format", "{{.Name}}"]).split("\n")
  ].filter((line) => line !== "")

/** The run directory under `outputDir`, once its stage is up and its test sits in a step. */
export const upAndWaiting = (outputDir: string, timeout: Duration.Input) =>
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
