// The per-project lock of up/down/prune: serializes across fibers and processes, breaks a dead holder's lock,
// gives up with StageBusy naming a live holder, and never leaves its own lock behind.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Ref } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { withLock } from "../src/internal/lock.ts"
import * as Owner from "../src/internal/owner.ts"

const withStateDir = <A, E, R>(body: (dir: string) => Effect.Effect<A, E, R>) => {
  const dir = mkdtempSync(join(tmpdir(), "testbed-lock-"))
  return body(dir).pipe(Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true }))))
}

/** A lock file as another process would have written it. */
const plant = (dir: string, owner: Owner.Owner, operation = "up") =>
  writeFileSync(
    join(dir, "stage.lock"),
    `${JSON.stringify({ owner: Owner.format(owner), token: "planted", operation, since: "2026-01-01T00:00:00.000Z" })}\n`
  )

describe("stage lock", () => {
  it.live("holders take turns: two at once never overlap, and the lock is gone afterwards", () =>
    withStateDir((dir) =>
      Effect.gen(function* () {
        const inside = yield* Ref.make(0)
        const overlaps = yield* Ref.make(0)
        const critical = Effect.gen(function* () {
          if ((yield* Ref.getAndUpdate(inside, (n) => n + 1)) > 0) yield* Ref.update(overlaps, (n) => n + 1)
          yield* Effect.sleep("150 millis")
          yield* Ref.update(inside, (n) => n - 1)
        })
        yield* Effect.all(
          Array.from({ length: 4 }, () => withLock({ stateDir: dir, operation: "up" }, critical)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(yield* Ref.get(overlaps), 0)
        assert.deepStrictEqual(readdirSync(dir), [])
      }).pipe(Effect.provide(NodeServices.layer))
    )
  )

  it.live("a lock left by a dead process (SIGKILL) is broken at once", () =>
    withStateDir((dir) =>
      Effect.gen(function* () {
        const me = yield* Owner.of()
        plant(dir, { ...me, pid: spawnSync("true").pid as number })
        const ran = yield* withLock(
          { stateDir: dir, operation: "up", timeout: Duration.seconds(5) },
          Effect.succeed("ran")
        )
        assert.strictEqual(ran, "ran")
        assert.isFalse(existsSync(join(dir, "stage.lock")))
      }).pipe(Effect.provide(NodeServices.layer))
    )
  )

  it.live("a live holder in another process makes the caller wait, then fail with StageBusy naming it", () =>
    withStateDir((dir) =>
      Effect.gen(function* () {
        const sleeper = spawn("sleep", ["60"])
        const holder = yield* Owner.of(sleeper.pid as number)
        plant(dir, holder, "down")
        const exit = yield* Effect.exit(
          withLock({ stateDir: dir, operation: "up", timeout: Duration.millis(700) }, Effect.void)
        ).pipe(Effect.ensuring(Effect.sync(() => sleeper.kill("SIGKILL"))))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        const busy = error?._tag === "Fail" ? error.error : undefined
        assert.strictEqual(busy?._tag, "StageBusy")
        assert.include(busy?.message, `pid ${sleeper.pid}`)
        assert.include(busy?.message, "`stage down`")
        // The planted lock is not ours: it stays.
        assert.isTrue(existsSync(join(dir, "stage.lock")))
      }).pipe(Effect.provide(NodeServices.layer))
    )
  )

  it.live("waiting can be interrupted, and the waiter leaves nothing behind", () =>
    withStateDir((dir) =>
      Effect.gen(function* () {
        const me = yield* Owner.of()
        plant(dir, me)
        const fiber = yield* Effect.forkChild(withLock({ stateDir: dir, operation: "up" }, Effect.void))
        yield* Effect.sleep("300 millis")
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(readdirSync(dir), ["stage.lock"])
      }).pipe(Effect.provide(NodeServices.layer))
    )
  )
})
