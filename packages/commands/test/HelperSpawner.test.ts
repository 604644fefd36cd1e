// HelperSpawner: effect's ChildProcessSpawner on the spawn helper, for service-shaped commands. Real processes.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { readFileSync } from "node:fs"
import { ExitStatus, HelperSpawner } from "../src/index.ts"
import * as SpawnHelper from "../src/internal/SpawnHelper.ts"
import { isRunning } from "./fixtures/processes.ts"

const spawner = Effect.map(ChildProcessSpawner.ChildProcessSpawner, HelperSpawner.make)
const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1])
const text = (stream: Stream.Stream<Uint8Array, unknown>) => Stream.mkString(Stream.decodeText(stream))

describe("HelperSpawner", () => {
  it.live("a service-shaped command runs under the helper: stdin fed, output read, exit code", () =>
    Effect.gen(function* () {
      const spawn = yield* spawner
      const handle = yield* spawn.spawn(
        ChildProcess.make("sh", ["-c", "echo ppid=$PPID; cat; echo err >&2; exit 7"], {
          stdin: Stream.make(new TextEncoder().encode("fed")),
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }
        })
      )
      const [out, err] = yield* Effect.all([text(handle.stdout), text(handle.stderr)], { concurrency: 2 })
      assert.strictEqual(out, `ppid=${SpawnHelper.pid()}\nfed`)
      assert.strictEqual(err, "err\n")
      assert.strictEqual(yield* handle.exitCode, 7)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.live("a large input to a child that never reads it ends with the child; a large one read arrives whole", () =>
    Effect.gen(function* () {
      const spawn = yield* spawner
      const chunk = new Uint8Array(1 << 20).fill(120)
      const input = Stream.make(...Array.from({ length: 16 }, () => chunk))
      const unread = yield* spawn.spawn(ChildProcess.make("true", [], { stdin: input }))
      assert.strictEqual(yield* unread.exitCode, 0)
      const read = yield* spawn.spawn(ChildProcess.make("wc", ["-c"], { stdin: input }))
      assert.strictEqual((yield* text(read.stdout)).trim(), String(16 << 20))
      assert.strictEqual(yield* read.exitCode, 0)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.live("a signalled leader fails exitCode naming the signal; kill ends a group that ignores TERM", () =>
    Effect.gen(function* () {
      const spawn = yield* spawner
      const signalled = yield* spawn.spawn(ChildProcess.make("sh", ["-c", "kill -9 $$"], { stdin: "ignore" }))
      const failure = yield* Effect.flip(signalled.exitCode)
      assert.strictEqual(ExitStatus.signalOf(failure), "SIGKILL")
      const stubborn = yield* spawn.spawn(
        ChildProcess.make("sh", ["-c", "trap '' TERM; sleep 300 & echo $!; wait"], {
          stdin: "ignore",
          forceKillAfter: "200 millis"
        })
      )
      assert.strictEqual(parentOf(stubborn.pid), SpawnHelper.pid())
      const grandchild = Number(
        yield* Stream.runHead(Stream.splitLines(Stream.decodeText(stubborn.stdout))).pipe(
          Effect.map((line) => (line._tag === "Some" ? line.value : "0"))
        )
      )
      assert.isTrue(isRunning(grandchild))
      yield* stubborn.kill({ killSignal: "SIGTERM", forceKillAfter: "200 millis" })
      assert.isFalse(isRunning(stubborn.pid))
      assert.isFalse(isRunning(grandchild))
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.live("a missing program is a NotFound naming it; what the helper does not start goes to the inner spawner", () =>
    Effect.gen(function* () {
      const spawn = yield* spawner
      const missing = yield* Effect.flip(spawn.spawn(ChildProcess.make("no-such-program-xyz", [], { stdin: "ignore" })))
      assert.include(missing.message, "no-such-program-xyz")
      assert.strictEqual((missing.reason as { _tag?: string })._tag, "NotFound")
      // An interactive stdin ("pipe", effect's default) is not the helper's: spawned here, directly.
      const direct = yield* spawn.spawn(ChildProcess.make("sleep", ["5"]))
      assert.strictEqual(parentOf(direct.pid), process.pid)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )
})
