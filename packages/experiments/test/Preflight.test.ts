import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Experiment } from "../src/index.ts"

/** A scratch directory with an experiment file and a plugin whose image no engine has. */
const scratch = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "testbed-preflight-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const absentImage = `testbed-preflight-absent:${process.pid}-${Date.now()}`

const plugin = `export default {
  name: "absent-image",
  type: "iut",
  protocols: ["tcp"],
  versions: ["1"],
  docker: { image: ${JSON.stringify(absentImage)} },
  roles: { server: { command: { program: "true", args: [] } } }
}
`

const experiment = [
  "tests:",
  "  - name: local",
  "    services: { s: { implementation: node-echo, role: server } }",
  "    steps:",
  "      - run: { command: [sh, -c, 'true'] }",
  "      - run: { command: [testbed-no-such-program-xyz, --flag] }",
  "      - run: { command: ['{{ test_dir }}/x'] }",
  "  - name: in docker without an image",
  "    environment: docker",
  "    services:",
  "      echo: { implementation: node-echo, role: server }",
  "  - name: in docker with an absent image",
  "    environment: docker",
  "    services:",
  "      server: { implementation: absent-image, role: server }"
].join("\n")

describe("Experiment.dryRun (--dry-run checks the machine too)", () => {
  it.effect("reports what is certain to fail, with YAML paths and positions, running nothing", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      writeFileSync(join(dir, "absent.mjs"), plugin)
      const file = join(dir, "exp.yaml")
      writeFileSync(file, experiment)
      // The file itself is fine: plain preparation (what a run does first) accepts it.
      yield* Experiment.prepare(file, { pluginDirectories: [dir] })
      const error = yield* Effect.flip(Experiment.dryRun(file, { pluginDirectories: [dir] }))
      assert.strictEqual(error._tag, "ExperimentConfigInvalid")
      assert.deepStrictEqual(
        error.problems.map((p) => [p.path, p.line, p.message]),
        [
          ["tests[0].steps[1].run.command[0]", 6, `"testbed-no-such-program-xyz" is not found on PATH`],
          [
            "tests[1].services.echo.implementation",
            11,
            `plugin "node-echo" has no docker image, build context or rootfs: the docker environment cannot run it`
          ],
          [
            "tests[2].services.server.implementation",
            15,
            `image "${absentImage}" of plugin "absent-image" is not present locally (the docker environment does not pull: build or load it first)`
          ]
        ]
      )
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a file the machine can run passes", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      const file = join(dir, "ok.yaml")
      writeFileSync(
        file,
        "tests:\n  - name: t\n    services: { s: { implementation: node-echo, role: server } }\n    steps:\n      - run: { command: [sh, -c, 'true'] }\n"
      )
      const prepared = yield* Experiment.dryRun(file)
      assert.strictEqual(prepared.plan.tests.length, 1)
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
