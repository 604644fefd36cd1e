// `testbed replay` as a user runs it: a real process, its exit codes and what it prints (the library's own
// behaviour is tested in packages/replay; these check the command line around it).
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, FileSystem } from "effect"
// The replay package's fixtures and process helpers: the greeter server, its client, a raw TCP client.
import {
  assertCutShortScript,
  client,
  fixtures,
  node,
  platform,
  repo,
  sessionsCutShort,
  spawn,
  startGreeter,
  tempDir
} from "../../../packages/replay/test/support.ts"
import { bin } from "./support.ts"

/** Runs `testbed replay test` from the checkout, as a user would; its exit code and output. */
const cli = (args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number | null; output: string }>((resume) => {
    const child = ChildProcess.spawn(process.execPath, [bin, ...args], {
      cwd: repo,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.once("close", (code) => resume(Effect.succeed({ code, output })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const replayTestCli = (session: string, clientFile: string, args: ReadonlyArray<string> = []) =>
  cli([
    "replay",
    "test",
    "-i",
    `fixtures/replay/${session}`,
    "--",
    process.execPath,
    `fixtures/replay/nds-clients/${clientFile}`,
    ...args
  ])

describe("testbed replay test with the NDS sessions", () => {
  it.live("passes both fixture clients", () =>
    Effect.gen(function* () {
      const one = yield* replayTestCli("nds1-session.json", "nds1-client.ts")
      assert.strictEqual(one.code, 0, one.output)
      assert.include(one.output, "nds1 client: every answer checked")
      const two = yield* replayTestCli("nds2-session.json", "nds2-client.ts")
      assert.strictEqual(two.code, 0, two.output)
      assert.include(two.output, "nds2 client: every answer checked")
    })
  )

  it.live("fails (exit 1) when a client sends a wrong byte, and says where", () =>
    Effect.gen(function* () {
      const one = yield* replayTestCli("nds1-session.json", "nds1-client.ts", ["--wrong", "net-writer"])
      assert.strictEqual(one.code, 1, one.output)
      assert.include(
        one.output,
        "step recorded_script.scripts[7]: the client's bytes differ from the script at offset 48"
      )
      const two = yield* replayTestCli("nds2-session.json", "nds2-client.ts", ["--wrong", "revision"])
      assert.strictEqual(two.code, 1, two.output)
      assert.include(
        two.output,
        "step recorded_script.scripts[2]: the client's bytes differ from the script at offset 25"
      )
    })
  )
})

describe("testbed replay test and check", () => {
  it.live(
    "the CLI: replay test exits with the client's code or 1, replay check describes a script",
    () =>
      Effect.gen(function* () {
        const run = (args: ReadonlyArray<string>) =>
          Effect.scoped(
            Effect.gen(function* () {
              const proc = yield* spawn(node, [bin, "replay", ...args])
              return { code: yield* proc.exitCode, output: proc.output() }
            })
          )
        const input = Path.join(fixtures, "library.json")
        const ok = yield* run(["test", "-i", input, "--", node, client, "--blob", "40", "--blob", "5000"])
        assert.strictEqual(ok.code, 0, ok.output)
        assert.match(ok.output, /Test server listening on 127\.0\.0\.1:\d+/)
        assert.include(ok.output, "5 step(s) matched")
        const bad = yield* run(["test", "-i", input, "--fault", "reset@2", "--", node, client, "--name", "other"])
        assert.strictEqual(bad.code, 1, bad.output)
        assert.include(bad.output, "differ from the script at offset 5")
        const check = yield* run(["check", Path.join(fixtures, "multi-1.json")])
        assert.strictEqual(check.code, 0, check.output)
        assert.include(check.output, "recorded_script: 2 connection(s)")
        const blobs = yield* run(["check", Path.join(fixtures, "greeting-1.json")])
        assert.include(blobs.output, "99cdfefc9717aa740d26c476135674a0d622afdf: 5000 bytes, verified (sha1")
        const greeting = Path.join(fixtures, "greeting-1.json")
        const never = yield* run(["test", "-i", greeting, "--", "true"])
        assert.strictEqual(never.code, 1, never.output)
        assert.include(never.output, "the client never opened this connection")
        const optional = yield* run(["test", "-i", greeting, "--optional-connections", "--", "true"])
        assert.strictEqual(optional.code, 0, optional.output)
        const missing = yield* run(["check", Path.join(fixtures, "nope.json")])
        assert.strictEqual(missing.code, 2)
      }),
    120_000
  )
})

describe("testbed replay record", () => {
  it.live(
    "on SIGTERM the record command writes what it has so far, to the first unused BASE-N.json",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fs = yield* FileSystem.FileSystem
        yield* fs.writeFileString(Path.join(dir, "cut-1.json"), "{}")
        const greeter = yield* startGreeter
        const proxy = yield* spawn(node, [
          bin,
          "replay",
          "record",
          "-l",
          "127.0.0.1:0",
          "-r",
          `127.0.0.1:${greeter.port}`,
          "-o",
          Path.join(dir, "cut")
        ])
        const port = Number((yield* proxy.waitFor(/listening on [\d.]+:(\d+)/))[1])
        // A second connection still open when the signal comes: its exchanges so far are kept too.
        yield* sessionsCutShort(port)
        proxy.child.kill("SIGTERM")
        // It exits by itself (130: interrupted), after writing, rather than being killed by the signal.
        assert.strictEqual(yield* proxy.exitCode.pipe(Effect.timeout(Duration.seconds(30))), 130)
        assert.include(proxy.output(), "cut-2.json")
        assertCutShortScript(yield* fs.readFileString(Path.join(dir, "cut-2.json")))
      }).pipe(Effect.provide(platform)),
    120_000
  )
})
