// Which process holds a lock or made a resource, on real processes: this one is alive; an exited one, a reused pid,
// an earlier boot and a zombie are dead; a lock held by another live process is waited for, then StageBusy.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { withLock } from "../src/internal/lock.ts"
import { ProcessOwner as Owner } from "@testbed/commands"

/** The pid of a process that has already exited. */
const deadPid = () => spawnSync("true").pid as number

describe("Owner", () => {
  it.effect("this process is alive; an exited one, a reused pid and an earlier boot are dead", () =>
    Effect.gen(function* () {
      const me = yield* Owner.of()
      assert.strictEqual(me.pid, process.pid)
      assert.match(me.start, /^\d+$/)
      assert.strictEqual(yield* Owner.liveness(me), "alive")
      assert.deepStrictEqual(Owner.parse(Owner.format(me)), me)
      assert.strictEqual(yield* Owner.liveness({ ...me, pid: deadPid() }), "dead")
      // Same pid, another start time: the pid was reused by another process.
      assert.strictEqual(yield* Owner.liveness({ ...me, start: String(Number(me.start) + 1) }), "dead")
      assert.strictEqual(yield* Owner.liveness({ ...me, boot: "00000000-0000-0000-0000-000000000000" }), "dead")
      // Another host (or another container's pid namespace) cannot be checked from here: never taken for dead.
      assert.strictEqual(yield* Owner.liveness({ ...me, host: `${hostname()}-elsewhere`, pid: deadPid() }), "elsewhere")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it("parses only what it formats", () => {
    for (const bad of ["", "a/b/c", "h/b/0/1", "h/b/-1/1", "/b/12/1", "h/b/12/1/x"]) {
      assert.isUndefined(Owner.parse(bad), bad)
    }
    assert.deepStrictEqual(Owner.parse("vm/abc/42/777"), { host: "vm", boot: "abc", pid: 42, start: "777" })
  })

  it.live("a process that exited but was not collected yet (a zombie) is dead", () =>
    Effect.gen(function* () {
      // The child of a shell that ignores it: `exec sleep` replaces the shell, the short-lived child is never waited for.
      const parent = spawn("sh", ["-c", "true & exec sleep 30"])
      const zombie = yield* Effect.promise(async () => {
        for (let i = 0; i < 100; i++) {
          const children = spawnSync("ps", ["-o", "pid=,stat=", "--ppid", String(parent.pid)], {
            encoding: "utf8"
          }).stdout
          const found = children.split("\n").find((line) => /\bZ/.test(line))
          if (found !== undefined) return Number(found.trim().split(/\s+/)[0])
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
        return undefined
      })
      assert.isDefined(zombie)
      const owner = yield* Owner.of(zombie as number)
      assert.strictEqual(yield* Owner.liveness(owner), "dead")
      parent.kill("SIGKILL")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.live("a lock held by another live process makes the caller wait, then fail with StageBusy naming it", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "testbed-lock-"))
      const sleeper = spawn("sleep", ["60"])
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          sleeper.kill("SIGKILL")
          rmSync(dir, { recursive: true, force: true })
        })
      )
      const holder = yield* Owner.of(sleeper.pid as number)
      writeFileSync(
        join(dir, "stage.lock"),
        `${JSON.stringify({ owner: Owner.format(holder), token: "planted", operation: "down", since: "2026-01-01T00:00:00.000Z" })}\n`
      )
      const exit = yield* Effect.exit(
        withLock({ stateDir: dir, operation: "up", timeout: Duration.millis(300) }, Effect.void)
      )
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      const busy = error?._tag === "Fail" ? error.error : undefined
      assert.strictEqual(busy?._tag, "StageBusy")
      assert.include(busy?.message, `pid ${sleeper.pid}`)
      assert.isTrue(existsSync(join(dir, "stage.lock")))
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
