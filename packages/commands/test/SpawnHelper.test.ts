// The spawn helper (internal/SpawnHelper.ts) starts LocalRunner's processes: a small process forks instead of this
// one. Real processes throughout; what the helper must keep of a direct spawn (output, exit, signals, refusals,
// groups, stdin, environment) is tested on LocalRunner itself (LocalRunner.test.ts), which now goes through it.
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Command, CommandRunner } from "../src/index.ts"
import * as SpawnHelper from "../src/internal/SpawnHelper.ts"
import { isRunning, LocalLayer } from "./fixtures/processes.ts"

const fixture = (name: string) => decodeURIComponent(new URL(`./fixtures/${name}`, import.meta.url).pathname)

/** Runs `spawn-parent.ts` to its own end (bounded) and reads what it printed. */
const spawnParent = (env: NodeJS.ProcessEnv, ...args: ReadonlyArray<string>) =>
  Effect.callback<{
    readonly ppid: number
    readonly self: number
    readonly helper: string
    readonly code: number | null
    readonly first: string | undefined
  }>((resume) => {
    const child = spawn(process.execPath, [fixture("spawn-parent.ts"), ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      env
    })
    let output = ""
    child.stdout.on("data", (chunk) => (output += String(chunk)))
    child.on("close", (code) => {
      const fields = Object.fromEntries(
        output
          .trim()
          .split(" ")
          .map((field) => field.split("="))
      )
      resume(
        Effect.succeed({
          ppid: Number(fields.ppid),
          self: Number(fields.self),
          helper: String(fields.helper),
          first: fields.first,
          code
        })
      )
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  }).pipe(
    // Generous: on a shared 2-core machine under load, starting Node with Effect takes long.
    Effect.timeout("90 seconds")
  )

describe("SpawnHelper", () => {
  it.live("LocalRunner's commands are started by the helper, whose environment is empty", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const result = yield* runner.run(Command.shell("echo $PPID"))
      const helper = SpawnHelper.pid()
      assert.isDefined(helper)
      assert.strictEqual(Number(result.stdout.trim()), helper)
      assert.notStrictEqual(helper, process.pid)
      // Nothing of this process's environment (secrets included) reaches the helper: only Node's own IPC variables.
      const environ = readFileSync(`/proc/${helper}/environ`, "utf8")
        .split("\0")
        .filter((entry) => entry !== "")
      assert.deepStrictEqual(
        environ.filter((entry) => !entry.startsWith("NODE_CHANNEL_")),
        []
      )
    }).pipe(Effect.provide(LocalLayer))
  )

  it.live("a process that used the helper ends by itself, and the helper ends with it", () =>
    Effect.gen(function* () {
      const ran = yield* spawnParent(process.env)
      assert.strictEqual(ran.code, 0)
      assert.notStrictEqual(ran.helper, "none")
      assert.strictEqual(ran.ppid, Number(ran.helper))
      const helper = Number(ran.helper)
      // The helper exits once its parent's channel closes; poll (bounded) until it has.
      let left = isRunning(helper)
      for (let i = 0; i < 100 && left; i++) {
        yield* Effect.sleep("100 millis")
        left = isRunning(helper)
      }
      assert.isFalse(left, `helper ${helper} outlived its parent`)
    })
  )

  it.live("TESTBED_SPAWN_DIRECT=1 spawns directly, with no helper", () =>
    Effect.gen(function* () {
      const ran = yield* spawnParent({ ...process.env, TESTBED_SPAWN_DIRECT: "1" })
      assert.strictEqual(ran.code, 0)
      assert.strictEqual(ran.helper, "none")
      assert.strictEqual(ran.ppid, ran.self)
    })
  )

  it.live("once the helper has died, commands are spawned directly and still run", () =>
    Effect.gen(function* () {
      const ran = yield* spawnParent(process.env, "--kill-helper")
      assert.strictEqual(ran.code, 0)
      assert.strictEqual(ran.helper, "none")
      assert.strictEqual(ran.ppid, ran.self)
    })
  )

  it.live(
    "a helper that does not answer (stopped) is ended at its deadline: that command fails, later ones run directly",
    () =>
      Effect.gen(function* () {
        const ran = yield* spawnParent(process.env, "--stop-helper")
        assert.strictEqual(ran.code, 0)
        assert.strictEqual(ran.first, "CommandSpawnFailed")
        assert.strictEqual(ran.helper, "none")
        assert.strictEqual(ran.ppid, ran.self)
      })
  )

  it.live("many commands at once, given input they exit without reading, all finish (every pipe is passed)", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const results = yield* Effect.forEach(
        Array.from({ length: 48 }, (_, i) => i),
        (i) => runner.run(Command.make("sh", ["-c", i % 2 === 0 ? "exit 0" : "printf x; exit 0"], { stdin: "input" })),
        { concurrency: 16 }
      ).pipe(Effect.timeout("60 seconds"))
      assert.strictEqual(results.length, 48)
      assert.deepStrictEqual(
        results.map((result) => result.stdout),
        Array.from({ length: 48 }, (_, i) => (i % 2 === 0 ? "" : "x"))
      )
    }).pipe(Effect.provide(LocalLayer))
  )

  it.live("output large and small arrives complete through the helper's pipes", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const big = yield* runner.run(
        Command.shell("head -c 30000000 /dev/zero | tr '\\0' x; printf end >&2", { maxOutputBytes: 40_000_000 })
      )
      assert.strictEqual(big.stdout.length, 30_000_000)
      assert.strictEqual(big.stderr, "end")
      const small = yield* runner.run(Command.make("printf", ["a"]))
      assert.strictEqual(small.stdout, "a")
    }).pipe(Effect.provide(LocalLayer))
  )
})
