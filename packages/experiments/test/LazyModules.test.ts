// `run --dry-run` and runs on localhost do not load the Docker client, the MQTT libraries or @testbed/replay: the
// docker environment, the Docker image probe, the fleet step and the replay step and helpers load their modules when
// they are used.
import { spawnSync } from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { builtins, dockerEnvironment } from "../src/Experiment.ts"

const index = decodeURIComponent(new URL("../src/index.ts", import.meta.url).pathname)

// Loaded in a child process (this one has loaded everything already); a resolve hook lists the packages imported.
const hook = `
import { registerHooks } from "node:module"
import { writeSync } from "node:fs"
registerHooks({ resolve(specifier, context, next) {
  if (!specifier.startsWith(".") && !specifier.startsWith("node:") && !specifier.startsWith("file:")) writeSync(2, "IMPORT " + specifier + "\\n")
  return next(specifier, context)
} })`

describe("lazily loaded modules", () => {
  it("importing @testbed/experiments loads neither dockerode nor mqtt nor aedes nor @testbed/replay", () => {
    const child = spawnSync(
      process.execPath,
      [
        "--import",
        `data:text/javascript,${encodeURIComponent(hook)}`,
        "--input-type=module",
        "-e",
        `await import(${JSON.stringify(index)})`
      ],
      { encoding: "utf8", timeout: 120_000 }
    )
    assert.strictEqual(child.status, 0, child.stderr)
    const imported = new Set(
      child.stderr.split("\n").flatMap((line) => (line.startsWith("IMPORT ") ? [line.slice(7)] : []))
    )
    assert.isTrue(imported.has("@testbed/plugins"), `the hook saw the imports: ${[...imported].join(", ")}`)
    const heavy = ["dockerode", "mqtt", "aedes", "@testbed/fleet", "@testbed/stages", "@testbed/stages/Docker"]
    for (const module of [...heavy, "@testbed/replay"]) {
      assert.isFalse(imported.has(module), `${module} was loaded`)
    }
  }, 120_000)

  it.effect("the docker builtin is the docker environment's name and description", () =>
    Effect.gen(function* () {
      const DockerEnvironment = yield* Effect.promise(() => import("../src/DockerEnvironment.ts"))
      assert.strictEqual(dockerEnvironment.name, DockerEnvironment.plugin.name)
      assert.strictEqual(dockerEnvironment.description, DockerEnvironment.plugin.description)
      assert.include(builtins.environments ?? [], dockerEnvironment)
    })
  )
})
