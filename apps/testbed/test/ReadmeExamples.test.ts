// Every code block marked runnable in the READMEs runs, so the examples and the tutorial cannot rot: TypeScript
// examples against the workspace's packages, shell blocks with `testbed` (this checkout's CLI) on PATH, each
// README in a fresh directory of its own.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { extractFile } from "../../../scripts/readme-examples.ts"
import { has, isCI, missing, skipUnlessCI } from "./support/prerequisites.ts"
import * as Readmes from "./support/readmes.ts"

const repo = fileURLToPath(new URL("../../../", import.meta.url))
const app = fileURLToPath(new URL("../", import.meta.url))
const packageReadmes = readdirSync(join(repo, "packages")).map((name) => `packages/${name}/README.md`)

// A `testbed` command for the shell blocks: this checkout's CLI, run from its sources by the pinned Node.
const binDir = mkdtempSync(join(tmpdir(), "testbed-readme-bin-"))
writeFileSync(join(binDir, "testbed"), `#!/bin/sh\nexec '${process.execPath}' '${join(app, "src/bin.ts")}' "$@"\n`)
chmodSync(join(binDir, "testbed"), 0o755)

const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("npm_") && key !== "INIT_CWD")),
  PATH: [binDir, dirname(process.execPath), process.env.PATH ?? ""].join(delimiter)
}

// TypeScript examples import @testbed/*, effect and @effect/platform-node: the CLI package depends on all of
// them, so the examples run in a directory inside it (Node resolves packages from the file's location).
const workDir = (readme: string) => {
  mkdirSync(join(app, ".examples"), { recursive: true })
  return mkdtempSync(join(app, ".examples", `${readme.replace(/[^a-z0-9]+/gi, "-")}-`))
}

const runReadme = (readme: string) =>
  Effect.gen(function* () {
    const examples = extractFile(join(repo, readme))
    assert.isAbove(examples.length, 0, `${readme} has no runnable example`)
    const dir = workDir(readme)
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    yield* Readmes.runAll(examples, { dir, env, node: process.execPath })
  })

describe("README examples", () => {
  it("every package README has a runnable TypeScript example", () => {
    for (const readme of packageReadmes) {
      const programs = extractFile(join(repo, readme)).filter((example) => example.kind === "program")
      assert.isAbove(programs.length, 0, `${readme}: no \`\`\`ts runnable block`)
    }
  })

  for (const readme of packageReadmes) {
    it.live(`${readme}: the runnable examples run`, () => runReadme(readme), 120_000)
  }

  // The tutorial uses socat, BusyBox (for the image) and a Docker engine, as the README says.
  const tutorialMissing = missing({
    socat: has.program("socat"),
    "/bin/busybox (busybox-static)": has.file("/bin/busybox"),
    "a Docker engine": has.docker()
  })
  it.live.skipIf(skipUnlessCI(tutorialMissing))(
    "README.md: the tutorial works as written, from an empty directory",
    () =>
      Effect.gen(function* () {
        if (isCI) assert.deepStrictEqual(tutorialMissing, [], "the tutorial's prerequisites")
        yield* runReadme("README.md")
      }),
    300_000
  )
})
