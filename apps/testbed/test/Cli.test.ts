import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import packageJson from "../package.json" with { type: "json" }
import { bin, testbed } from "./support.ts"

const tracer = fileURLToPath(new URL("./support/trace-modules.mjs", import.meta.url))

/** The modules `testbed ARGS` loads (file URLs), recorded by a load hook. */
const modulesLoadedBy = (...args: ReadonlyArray<string>) =>
  Effect.callback<ReadonlyArray<string>>((resume) => {
    const dir = mkdtempSync(join(tmpdir(), "testbed-trace-"))
    const file = join(dir, "modules.txt")
    const child = execFile(
      process.execPath,
      ["--import", tracer, bin, ...args],
      { timeout: 60_000, env: { ...process.env, TESTBED_TRACE_MODULES: file } },
      () => {
        const modules = readFileSync(file, "utf8").split("\n")
        rmSync(dir, { recursive: true, force: true })
        resume(Effect.succeed(modules))
      }
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const fromPackage = (modules: ReadonlyArray<string>, name: string) =>
  modules.filter((url) => url.includes(`/packages/${name}/`) || url.includes(`/@testbed/${name}/`))

describe("testbed CLI", () => {
  it.live("--version prints the package version", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* testbed("--version")
      assert.strictEqual(code, 0)
      assert.include(stdout, packageJson.version)
    })
  )

  it.live("--help describes the tool and its command groups", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* testbed("--help")
      assert.strictEqual(code, 0)
      assert.include(stdout, "USAGE")
      assert.include(stdout, "testbed")
    })
  )

  it.live("an unknown command is a usage error: exit code 2", () =>
    Effect.gen(function* () {
      const { code, stdout, stderr } = yield* testbed("no-such-command")
      assert.strictEqual(code, 2)
      assert.match(stdout + stderr, /no-such-command/)
    })
  )

  it.live("--version loads nothing but the entry point and package.json (no Effect, no library)", () =>
    Effect.gen(function* () {
      const modules = yield* modulesLoadedBy("--version")
      assert.deepStrictEqual(
        modules.filter((url) => url.includes("/node_modules/") || url.includes("/packages/")),
        []
      )
    })
  )

  it.live("a command loads its own group's libraries only", () =>
    Effect.gen(function* () {
      const modules = yield* modulesLoadedBy("report", "--help")
      assert.isNotEmpty(fromPackage(modules, "reports"))
      for (const other of ["experiments", "fleet", "stages", "replay", "plugins"])
        assert.deepStrictEqual(fromPackage(modules, other), [], `report --help loaded @testbed/${other}`)
      assert.isEmpty(modules.filter((url) => /\/node_modules\/(\.pnpm\/)?(mqtt|aedes|dockerode)/.test(url)))
    })
  )

  it.live("run --help loads no library: the experiment manager is loaded when an experiment runs", () =>
    Effect.gen(function* () {
      const modules = yield* modulesLoadedBy("run", "--help")
      // Two leaf modules of @testbed/events (the exit-code table and the duration schema its flags decode with; no
      // imports but effect) are the only pieces of a library allowed.
      assert.deepStrictEqual(
        modules.filter(
          (url) =>
            /\/packages\/[a-z]+\/src\/|\/@testbed\//.test(url) &&
            !/\/events\/(src|dist)\/(ExitCode|TimeSpan)\.[jt]s$/.test(url)
        ),
        []
      )
    })
  )

  it.live("--help still lists every command group, loaded or not", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* testbed("--help")
      assert.strictEqual(code, 0)
      for (const group of ["fleet", "plugins", "replay", "report", "run", "stage"])
        assert.match(stdout, new RegExp(`\\n  ${group}\\s`))
    })
  )
})
