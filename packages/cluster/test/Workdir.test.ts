// One runner per work directory: `WORKDIR/runner.lock` is held for a runner's life. A second holder waits 5 s for
// one that is stopping, then fails with `WorkdirInUse` naming the holder (TestClock); the lock goes with its scope;
// and for real, a second runner process started on a live runner's work directory exits 75 without touching it.
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Workdir from "../src/internal/workdir.ts"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"
import { startRunner, testbed } from "./processes.ts"

const freshDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "testbed-workdir-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("Workdir.hold", () => {
  it.effect("a second holder waits 5 s, then fails naming the first; once the first lets go, the lock is free", () =>
    Effect.gen(function* () {
      const dir = yield* freshDir
      const held = yield* Deferred.make<void>()
      const first = yield* Effect.forkChild(
        Effect.scoped(
          Workdir.hold(dir, "r1").pipe(Effect.andThen(Deferred.succeed(held, undefined)), Effect.andThen(Effect.never))
        )
      )
      yield* Deferred.await(held)
      const second = yield* Effect.forkChild(Effect.scoped(Workdir.hold(dir, "r2")))
      // A second at a time, with the real file operations of its tries let through in between (the clock is the
      // test's; the files are not).
      for (let tick = 0; tick < 6; tick++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
        yield* TestClock.adjust("1 second")
      }
      const refused = yield* Fiber.await(second)
      assert.isTrue(Exit.isFailure(refused))
      const error = Exit.isFailure(refused) ? String(refused.cause) : ""
      assert.include(error, "WorkdirInUse")
      assert.include(error, `runner r1 (pid ${process.pid}`)
      yield* Fiber.interrupt(first)
      assert.notInclude(readdirSync(dir), "runner.lock")
      yield* Effect.scoped(Workdir.hold(dir, "r2"))
    }).pipe(Effect.provide(NodeServices.layer))
  )
})

describe.skipIf(skipWithoutPostgres)("one runner per work directory", () => {
  layer(Postgres.layer, { timeout: "300 seconds", excludeTestServices: true })((it) => {
    it.effect(
      "a runner started on a live runner's work directory exits 75 naming it, and leaves the directory alone",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          const first = yield* startRunner(url, "w1", yield* freePort, ["--no-detect", "--slots", "1"])
          const before = readdirSync(first.workdir).sort()
          const port = yield* freePort
          const second = yield* testbed(
            ["runner", "--cluster", url, "--name", "w2", "--advertise", `127.0.0.1:${port}`].concat([
              "--workdir",
              first.workdir,
              "--no-detect"
            ])
          )
          assert.strictEqual(second.code, 75, second.stdout + second.stderr)
          assert.include(second.stderr, `work directory ${first.workdir} is in use by runner w1`)
          assert.include(second.stderr, "give each runner its own --workdir")
          assert.deepStrictEqual(readdirSync(first.workdir).sort(), before)
          assert.isNull(first.child.exitCode)
        }),
      { timeout: 120_000 }
    )
  })
})
