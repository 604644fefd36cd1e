// The replay server as a process of its own (what the experiments `replay` service runs): its arguments decoded at
// the edge, its verdict file, and its exit codes.
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ServeProcess from "../src/ServeProcess.ts"
import * as Verdict from "../src/Verdict.ts"
import { node, platform, rawClient, spawn, tempDir, writeFiles } from "./support.ts"

const entry = Path.join(import.meta.dirname, "../src/bin/serve.ts")

describe("ServeProcess", () => {
  it.effect("decodes --key value pairs, with defaults", () =>
    Effect.gen(function* () {
      const args = yield* ServeProcess.parse(["--script", "s.json", "--outcome", "o.json", "--port", "31200"])
      assert.deepStrictEqual(args, {
        script: "s.json",
        outcome: "o.json",
        name: "recorded_script",
        host: "127.0.0.1",
        port: 31200,
        connections: 1,
        "step-timeout": 10
      })
    })
  )

  it.effect("refuses missing, unknown, repeated and malformed arguments, saying which", () =>
    Effect.gen(function* () {
      const reason = (argv: ReadonlyArray<string>) => Effect.map(Effect.flip(ServeProcess.parse(argv)), (e) => e.reason)
      const base = ["--script", "s.json", "--outcome", "o.json"]
      assert.include(yield* reason(["--script", "s.json"]), "outcome")
      assert.include(yield* reason([...base, "--prot", "1"]), "prot")
      assert.include(yield* reason([...base, "--port"]), "--port needs a value")
      assert.include(yield* reason([...base, "--port", "70000"]), "port")
      assert.include(yield* reason([...base, "--connections", "0"]), "connections")
      assert.include(yield* reason([...base, "--script", "t.json"]), "--script is given twice")
      assert.include(yield* reason(["s.json"]), 'expected --FLAG VALUE, got "s.json"')
    })
  )

  it.live("as a process: serves until its connections are done, writes the verdict, exits 0 or 1", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* writeFiles(dir, {
        "s.json": {
          recorded_script: {
            type: "compound",
            scripts: [
              { type: "script", command: "", response: "HELLO\n" },
              { type: "script", command: "NAME bob\n", response: "HI bob\n" }
            ]
          }
        }
      })
      const outcome = Path.join(dir, "outcome.json")
      const serveOnce = (line: string) =>
        Effect.scoped(
          Effect.gen(function* () {
            const proc = yield* spawn(node, [entry, "--script", Path.join(dir, "s.json"), "--outcome", outcome])
            const port = Number((yield* proc.waitFor(/Test server listening on 127\.0\.0\.1:(\d+)/))[1])
            const client = yield* rawClient(port)
            yield* client.write(line)
            yield* client.end
            yield* client.received
            return { code: yield* proc.exitCode, verdict: yield* Verdict.read(outcome) }
          })
        )
      const passed = yield* serveOnce("NAME bob\n")
      assert.strictEqual(passed.code, 0)
      assert.isTrue(typeof passed.verdict !== "string" && passed.verdict.passed)
      assert.isTrue(typeof passed.verdict !== "string" && passed.verdict.summary.stepsMatched === 2)
      const failed = yield* serveOnce("NAME bOb\n")
      assert.strictEqual(failed.code, 1)
      assert.isTrue(typeof failed.verdict !== "string" && failed.verdict.failures[0]?.tag === "ScriptMismatch")
    }).pipe(Effect.provide(platform))
  )

  it.live("as a process: exit 2 and the reason on stderr for bad arguments or a script that does not load", () =>
    Effect.gen(function* () {
      const run = (args: ReadonlyArray<string>) =>
        Effect.callback<{ code: number | null; stderr: string }>((resume) => {
          const child = ChildProcess.execFile(node, [entry, ...args], (error, _stdout, stderr) =>
            resume(Effect.succeed({ code: error === null ? 0 : (error.code as number | null), stderr }))
          )
          return Effect.sync(() => child.kill("SIGKILL"))
        })
      const bad = yield* run(["--script"])
      assert.strictEqual(bad.code, 2)
      assert.include(bad.stderr, "replay-server: invalid arguments: --script needs a value")
      const missing = yield* run(["--script", "/nonexistent/s.json", "--outcome", "/tmp/o.json"])
      assert.strictEqual(missing.code, 2)
      assert.include(missing.stderr, "cannot read script")
    })
  )
})
