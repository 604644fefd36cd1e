// The per-project lock of up/down/prune, its timing on TestClock: serializes fibers, breaks a dead holder's lock at
// the next try, waits its deadline for a live holder then fails with StageBusy naming it, and never leaves its own
// lock behind. The lock files are real (a temporary state directory); no process is started. A holder in another
// live process is Owner.test's integration test.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, FileSystem, Ref } from "effect"
import { TestClock } from "effect/testing"
import { join } from "node:path"
import { withLock } from "../src/internal/lock.ts"
import { ProcessOwner as Owner } from "@testbed/commands"

/** A lock file as another holder would have written it. */
const plant = (dir: string, owner: Owner.Owner, operation = "up") =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.writeFileString(
      join(dir, "stage.lock"),
      `${JSON.stringify({ owner: Owner.format(owner), token: "planted", operation, since: "2026-01-01T00:00:00.000Z" })}\n`
    )
  )

/** Moves the Clock on in steps of 10 ms while the lock's real file I/O gets a moment between them. */
const driveClock = Effect.forkChild(
  Effect.forever(Effect.andThen(TestClock.adjust("10 millis"), TestClock.withLive(Effect.sleep("1 millis"))))
)

/** Runs `effect` in a fresh state directory, with the Clock driven; how long it took on the Clock. */
const timed = <A, E, R>(effect: (dir: string) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-lock-" })
    const driver = yield* driveClock
    const start = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(effect(dir))
    const elapsed = (yield* Clock.currentTimeMillis) - start
    yield* Fiber.interrupt(driver)
    return { exit, elapsed, files: yield* fs.readDirectory(dir) }
  })

describe("stage lock (TestClock)", () => {
  it.effect("holders take turns: four at once never overlap, and the lock is gone afterwards", () =>
    Effect.gen(function* () {
      const inside = yield* Ref.make(0)
      const overlaps = yield* Ref.make(0)
      const critical = Effect.gen(function* () {
        if ((yield* Ref.getAndUpdate(inside, (n) => n + 1)) > 0) yield* Ref.update(overlaps, (n) => n + 1)
        yield* Effect.sleep("150 millis")
        yield* Ref.update(inside, (n) => n - 1)
      })
      const { exit, elapsed, files } = yield* timed((dir) =>
        Effect.all(
          Array.from({ length: 4 }, () => withLock({ stateDir: dir, operation: "up" }, critical)),
          { concurrency: "unbounded" }
        )
      )
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(yield* Ref.get(overlaps), 0)
      // One after another: at least four critical sections' worth of Clock time.
      assert.isAtLeast(elapsed, 4 * 150)
      assert.deepStrictEqual(files, [])
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("a lock whose holder is dead (an earlier boot) is broken at the next try, not after the timeout", () =>
    Effect.gen(function* () {
      const me = yield* Owner.of()
      const { exit, elapsed, files } = yield* timed((dir) =>
        Effect.andThen(
          plant(dir, { ...me, boot: "00000000-0000-0000-0000-000000000000" }),
          withLock({ stateDir: dir, operation: "up", timeout: Duration.seconds(5) }, Effect.succeed("ran"))
        )
      )
      assert.deepStrictEqual(exit, Exit.succeed("ran"))
      // The first try finds it dead and breaks it; the second, 100 ms later, takes it.
      assert.isBelow(elapsed, 1000)
      assert.deepStrictEqual(files, [])
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect(
    "a live holder makes the caller wait out its timeout on the Clock, then fail with StageBusy naming it",
    () =>
      Effect.gen(function* () {
        // This process, under another token: a live holder that is not the caller.
        const me = yield* Owner.of()
        const { exit, elapsed, files } = yield* timed((dir) =>
          Effect.andThen(
            plant(dir, me, "down"),
            withLock({ stateDir: dir, operation: "up", timeout: Duration.seconds(5) }, Effect.void)
          )
        )
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
        const busy = error?._tag === "Fail" ? error.error : undefined
        assert.strictEqual(busy?._tag, "StageBusy")
        assert.include(busy?.message, `pid ${process.pid}`)
        assert.include(busy?.message, "`stage down`")
        assert.include(busy?.message, "waited 5 s")
        assert.isAtLeast(elapsed, 5000)
        // The planted lock is not ours: it stays, and nothing of ours is left beside it.
        assert.deepStrictEqual(files, ["stage.lock"])
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("waiting can be interrupted, and the waiter leaves nothing behind", () =>
    Effect.gen(function* () {
      const me = yield* Owner.of()
      const { exit, files } = yield* timed((dir) =>
        Effect.gen(function* () {
          yield* plant(dir, me)
          const fiber = yield* Effect.forkChild(withLock({ stateDir: dir, operation: "up" }, Effect.void))
          yield* Effect.sleep("300 millis")
          yield* Fiber.interrupt(fiber)
          return yield* Fiber.await(fiber)
        })
      )
      assert.isTrue(Exit.isSuccess(exit) && Exit.hasInterrupts(exit.value))
      assert.deepStrictEqual(files, ["stage.lock"])
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )
})
