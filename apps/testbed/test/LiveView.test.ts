// The live view of `testbed run` on a real terminal: a pseudo-terminal of 20 rows (util-linux `script`), its
// output replayed into a headless xterm to see what the user sees, scrollback included.
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import xterm from "@xterm/headless"
import { Effect } from "effect"
import { bin } from "./support.ts"

const hasScript = ["/usr/bin/script", "/bin/script"].some((path) => existsSync(path))
const rows = 20
const columns = 100

/** 40 short tests, 4 at a time; two of them fail. */
const experiment = [
  "name: forty",
  "concurrency: 4",
  "tests:",
  ...Array.from({ length: 40 }, (_, i) => [
    `  - name: t${String(i).padStart(2, "0")}`,
    "    services:",
    "      c:",
    "        implementation: exec",
    "        role: client",
    `        parameters: { program: sh, args: ["-c", "sleep 0.3; exit ${i === 7 || i === 31 ? 1 : 0}"] }`
  ]).flat()
].join("\n")

/** `testbed run FILE` in a pseudo-terminal of `rows` × `columns`: everything it wrote to the terminal. */
const inTerminal = (file: string, output: string, env: NodeJS.ProcessEnv) =>
  Effect.callback<string>((resume) => {
    const command = `stty rows ${rows} cols ${columns}; exec '${process.execPath}' '${bin}' run '${file}' --output-dir '${output}'`
    const child = execFile(
      "script",
      ["-qfec", command, "/dev/null"],
      { timeout: 180_000, maxBuffer: 16 * 1024 * 1024, env, encoding: "utf8" },
      (_error, stdout) => resume(Effect.succeed(stdout))
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Every line the terminal holds after `data`: the scrollback, then the screen. */
const screenOf = (data: string) =>
  Effect.callback<ReadonlyArray<string>>((resume) => {
    const terminal = new xterm.Terminal({ rows, cols: columns, scrollback: 5000, allowProposedApi: true })
    // A pty turns \n into \r\n already; the headless terminal takes the bytes as they are.
    terminal.write(data, () => {
      const buffer = terminal.buffer.active
      const lines = Array.from({ length: buffer.length }, (_, i) => buffer.getLine(i)?.translateToString(true) ?? "")
      terminal.dispose()
      resume(Effect.succeed(lines))
    })
  })

const scratch = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "testbed-live-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe.runIf(hasScript || process.env.CI === "true")("the live view of testbed run (40 tests, 20 rows)", () => {
  it.live("stays within the terminal: each finished test once, the frame never repainted into the scrollback", () =>
    Effect.gen(function* () {
      const dir = yield* scratch
      const file = join(dir, "forty.yaml")
      writeFileSync(file, experiment)
      const { CI: _ci, ...env } = process.env
      const raw = yield* inTerminal(file, join(dir, "out"), { ...env, TERM: "xterm-256color", NO_COLOR: "1" })
      const lines = yield* screenOf(raw)
      const count = (pattern: RegExp) => lines.filter((line) => pattern.test(line)).length
      assert.strictEqual(count(/▶ forty/), 1, lines.join("\n"))
      assert.strictEqual(count(/ done · /), 1, "one running total, not one per redraw")
      for (let i = 0; i < 40; i++) {
        const name = `t${String(i).padStart(2, "0")}`
        const finished = count(new RegExp(`^  . (passed|failed) ${name} `))
        // Printed once when it finished; a failure is also kept in the frame.
        assert.strictEqual(finished, i === 7 || i === 31 ? 2 : 1, `${name}\n${lines.join("\n")}`)
      }
      // The failures are on the screen at the end, with the total.
      const screen = lines.slice(-rows).join("\n")
      assert.include(screen, "✗ failed t07")
      assert.include(screen, "✗ failed t31")
      assert.include(screen, "40/40 done · 38 passed · 2 failed")
      assert.notInclude(raw, "\x1b[31m", "NO_COLOR: no colours")
    })
  )
})
