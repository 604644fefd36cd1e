// One runner per work directory: `WORKDIR/runner.lock` is held for a runner's life. A second holder waits 5 s for
// one that is stopping, then fails with `WorkdirInUse` naming the holder (TestClock); the lock goes with its scope;
// and for real, a second runner process started on a live runner's work directory exits 75 without touching it.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Workdir from "../src/internal/workdir.ts"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"
import { lockExpiry, startRunner, testbed } from "./processes.ts"

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

    // `--workdir runs` (the default is `.testbed-runner`) was used as given: paths of the run's files reached
    // services relative to the runner's directory, and a service runs in a directory of its own, so no TLS
    // service found its certificate (the whole TLS matrix failed on such a runner) while the local run passed.
    it.effect(
      "a runner started with a relative --workdir gives its services paths that work (the same test as a local run)",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          const dir = yield* freshDir
          yield* startRunner(url, "rel", yield* freePort, ["--no-detect", "--slots", "1"], { cwd: tmpdir() })
          const file = join(dir, "dirs.yaml")
          const check = "test -d '{{ test_dir }}' && test -d '{{ run_dir }}' && echo found"
          writeFileSync(
            file,
            [
              "name: dirs",
              "tests:",
              "  - name: sees its own directories",
              "    services:",
              `      c: { implementation: exec, role: client, parameters: { program: sh, args: ["-c", ${JSON.stringify(check)}] } }`,
              ""
            ].join("\n")
          )
          const out = ["--plain", "--output-dir", join(dir, "out")]
          const local = yield* testbed(["run", file, ...out])
          assert.strictEqual(local.code, 0, local.stdout + local.stderr)
          const remote = yield* testbed(["run", file, "--cluster", url, "--lock-expiry", lockExpiry, ...out])
          assert.strictEqual(remote.code, 0, remote.stdout + remote.stderr)
          assert.include(remote.stdout, "1 passed")
        }),
      { timeout: 180_000 }
    )
  })
})
