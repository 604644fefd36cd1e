import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import packageJson from "../package.json" with { type: "json" }

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
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

// Runs the real CLI as a child process, the way a user does.
const testbed = (...args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number; stdout: string; stderr: string }>((resume) => {
    const child = execFile(process.execPath, [bin, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

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

  it.live("an unknown command is an error with a non-zero exit code", () =>
    Effect.gen(function* () {
      const { code, stdout, stderr } = yield* testbed("no-such-command")
      assert.notStrictEqual(code, 0)
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
      assert.deepStrictEqual(
        modules.filter((url) => /\/packages\/[a-z]+\/src\/|\/@testbed\//.test(url)),
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
