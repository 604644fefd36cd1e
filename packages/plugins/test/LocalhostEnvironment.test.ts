import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, FileSystem, Option, Scope } from "effect"
import { LocalhostEnvironment } from "../src/index.ts"

const alive = (pid: number) => {
  // Signal 0 only asks whether the process exists.
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const setup = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped()
  const environment = yield* LocalhostEnvironment.make().setup({ test: "t", outputDir: dir })
  return { fs, dir, environment }
})

describe("LocalhostEnvironment", () => {
  it.live("runs a program with its output in two files and reports its exit code", () =>
    Effect.gen(function* () {
      const { fs, dir, environment } = yield* setup
      const process = yield* environment.launch({
        id: "t/s",
        command: {
          program: "sh",
          args: ["-c", "echo out; echo err >&2; read line; echo got $line; exit 4"],
          stdin: "hi\n"
        },
        stdoutPath: `${dir}/out.log`,
        stderrPath: `${dir}/err.log`
      })
      const exit = yield* process.exited
      assert.deepStrictEqual(exit, { exitCode: 4, signal: null, stopped: false })
      assert.strictEqual(yield* fs.readFileString(`${dir}/out.log`), "out\ngot hi\n")
      assert.strictEqual(yield* fs.readFileString(`${dir}/err.log`), "err\n")
      assert.isTrue(Option.isSome(yield* process.poll))
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.live("stop ends the whole process group and says it was stopped", () =>
    Effect.gen(function* () {
      const { fs, dir, environment } = yield* setup
      const process = yield* environment.launch({
        id: "t/s",
        command: { program: "sh", args: ["-c", "sleep 60 & echo $!; wait"] },
        stdoutPath: `${dir}/out.log`,
        stderrPath: `${dir}/err.log`
      })
      let child = ""
      while (child === "") {
        yield* Effect.sleep("10 millis")
        child = (yield* fs.readFileString(`${dir}/out.log`)).trim()
      }
      assert.isTrue(alive(Number(child)))
      const exit = yield* process.stop("1 second")
      assert.isTrue(exit.stopped)
      assert.strictEqual(exit.signal, "SIGTERM")
      assert.isFalse(alive(Number(child)))
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.live("closing the scope ends processes still running", () =>
    Effect.gen(function* () {
      const { dir, environment } = yield* setup
      const scope = yield* Scope.make()
      const process = yield* environment
        .launch({
          id: "t/s",
          command: { program: "sleep", args: ["60"] },
          stdoutPath: `${dir}/o`,
          stderrPath: `${dir}/e`
        })
        .pipe(Scope.provide(scope))
      assert.isTrue(alive(process.pid!))
      yield* Scope.close(scope, Effect.void as never)
      assert.isFalse(alive(process.pid!))
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.live("a missing program fails to launch with the reason", () =>
    Effect.gen(function* () {
      const { dir, environment } = yield* setup
      const error = yield* Effect.flip(
        environment.launch({
          id: "t/s",
          command: { program: "no-such-program-xyz" },
          stdoutPath: `${dir}/o`,
          stderrPath: `${dir}/e`
        })
      )
      assert.strictEqual(error._tag, "ServiceLaunchFailed")
      assert.include(error.message, "no-such-program-xyz")
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("allocates distinct free ports", () =>
    Effect.gen(function* () {
      const ports = yield* Effect.all([1, 2, 3, 4].map(() => LocalhostEnvironment.allocatePort("t")))
      assert.strictEqual(new Set(ports).size, 4)
      for (const port of ports) assert.isTrue(port > 0 && port < 65536)
    })
  )

  it.effect("an environment never hands out a port another one holds; closing it gives its ports back", () =>
    Effect.gen(function* () {
      // A kernel that offers the lowest port it thinks free, as one may between a probe and the bind.
      const offers = [5000, 5000, 5000, 5001, 5000]
      const plugin = LocalhostEnvironment.make({ freePort: () => Effect.sync(() => offers.shift() ?? 6000) })
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const first = yield* Scope.make()
      const a = yield* plugin.setup({ test: "a", outputDir: dir }).pipe(Scope.provide(first))
      const b = yield* plugin.setup({ test: "b", outputDir: dir })
      assert.strictEqual(yield* a.allocatePort, 5000)
      // 5000 is a's: offered twice more, refused, then 5001.
      assert.strictEqual(yield* b.allocatePort, 5001)
      yield* Scope.close(first, Exit.void)
      // Given back with a's environment.
      assert.strictEqual(yield* b.allocatePort, 5000)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )
})
