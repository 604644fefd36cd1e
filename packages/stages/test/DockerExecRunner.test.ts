// The container CommandRunner against a real node: output, exit codes, env, cwd, stdin, timeouts that kill,
// streaming, retries and the command events on the bus.
import { assert, describe, layer } from "@effect/vitest"
import { CommandRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Context, Duration, Effect, Fiber, Layer, Schedule, Stream } from "effect"
import * as DockerExecRunner from "../src/DockerExecRunner.ts"
import { Stages } from "../src/Stages.ts"
import { engineAvailable, sandbox, stagesLayer } from "./support.ts"

class Lab extends Context.Service<Lab, { readonly container: string }>()("test/Lab") {}

// One routing-lab for the whole file; brought down, pruned and deleted when the layer is released.
const labLayer = Layer.unwrap(
  Effect.sync(() => {
    const box = sandbox(["routing-lab"])
    const lab = Layer.effect(
      Lab,
      Effect.gen(function* () {
        const stages = yield* Stages
        yield* Effect.addFinalizer(() =>
          Effect.gen(function* () {
            yield* Effect.ignore(stages.down())
            yield* Effect.ignore(stages.prune())
            box.cleanup()
          })
        )
        yield* stages.up(yield* stages.load("routing-lab"))
        return { container: yield* stages.containerOf("client1") }
      })
    )
    return lab.pipe(Layer.provideMerge(stagesLayer(box)))
  })
)

const withRunner = <A, E>(f: (runner: CommandRunner.CommandRunner["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const { container } = yield* Lab
    const runner = yield* DockerExecRunner.make(container)
    return yield* f(runner)
  })

describe.skipIf(!engineAvailable)("DockerExecRunner (real Docker)", () => {
  layer(labLayer, { timeout: 180_000, excludeTestServices: true })((it) => {
    it.effect("captures stdout, stderr and the exit code; non-zero fails with the result", () =>
      withRunner((runner) =>
        Effect.gen(function* () {
          const ok = yield* runner.run({ shell: "echo out; echo err >&2" })
          assert.strictEqual(ok.stdout, "out\n")
          assert.strictEqual(ok.stderr, "err\n")
          assert.strictEqual(ok.exitCode, 0)
          const failed = yield* Effect.flip(runner.run({ shell: "echo partial; exit 3" }))
          assert.strictEqual(failed._tag, "CommandFailed")
          if (failed._tag === "CommandFailed") {
            assert.strictEqual(failed.result.exitCode, 3)
            assert.strictEqual(failed.result.stdout, "partial\n")
          }
          const accepted = yield* runner.run({ shell: "exit 3", successExitCodes: [3] })
          assert.strictEqual(accepted.exitCode, 3)
        })
      )
    )

    it.effect("env (extend and replace), cwd and stdin reach the process", () =>
      withRunner((runner) =>
        Effect.gen(function* () {
          const extended = yield* runner.run({ shell: "echo $GREETING:$PATH", env: { GREETING: "hi" } })
          assert.match(extended.stdout, /^hi:\/.+/)
          const replaced = yield* runner.run({ program: "env", env: { ONLY: "this" }, envMode: "replace" })
          assert.strictEqual(replaced.stdout.trim(), "ONLY=this")
          const cwd = yield* runner.run({ program: "pwd", cwd: "/tmp" })
          assert.strictEqual(cwd.stdout, "/tmp\n")
          const stdin = yield* runner.run({ program: "wc", args: ["-c"], stdin: "12345" })
          assert.strictEqual(stdin.stdout.trim(), "5")
          const missing = yield* Effect.flip(runner.run({ program: "no-such-program" }))
          assert.strictEqual(missing._tag, "CommandNotFound")
        })
      )
    )

    it.effect("a timeout fails with CommandTimedOut and kills the process in the container", () =>
      withRunner((runner) =>
        Effect.gen(function* () {
          const running = yield* Effect.forkChild(
            Effect.flip(runner.run({ program: "sleep", args: ["417"], timeout: Duration.seconds(3) }))
          )
          // It really runs first (so its absence afterwards means it was killed).
          yield* runner
            .run({ shell: "ps | grep -v grep | grep -q 'sleep 417'" })
            .pipe(Effect.retry(Schedule.spaced("100 millis")), Effect.timeout("10 seconds"))
          const error = yield* Fiber.join(running)
          assert.strictEqual(error._tag, "CommandTimedOut")
          const ps = yield* runner.run({ program: "ps" })
          assert.notInclude(ps.stdout, "sleep 417")
        })
      )
    )

    it.effect("streams output chunks and ends with the exit", () =>
      withRunner((runner) =>
        Effect.gen(function* () {
          const chunks = yield* Stream.runCollect(runner.stream({ shell: "echo one; echo two >&2" }))
          const text = (tag: string) =>
            chunks
              .filter((c) => c._tag === tag)
              .map((c) => ("bytes" in c ? Buffer.from(c.bytes).toString() : ""))
              .join("")
          assert.strictEqual(text("Stdout"), "one\n")
          assert.strictEqual(text("Stderr"), "two\n")
          const last = chunks.at(-1)
          assert.strictEqual(last?._tag, "Exit")
        })
      )
    )

    it.effect("retries until success and reports command events with the container runner's name", () =>
      Effect.gen(function* () {
        const { container } = yield* Lab
        const bus = yield* EventBus.EventBus
        const events = yield* bus.subscribe
        const runner = yield* DockerExecRunner.make(container)
        const marker = `/tmp/attempt-${Math.floor(Math.random() * 1e9)}`
        const result = yield* runner.run({
          id: "retry-1",
          shell: `if [ -e ${marker} ]; then echo second; else touch ${marker}; exit 1; fi`,
          retries: { times: 2, backoff: Duration.millis(10) }
        })
        assert.strictEqual(result.stdout, "second\n")
        assert.strictEqual(result.attempts, 2)
        const seen = yield* events.pipe(
          Stream.filter((e) => e.entityId === "retry-1"),
          Stream.take(3),
          Stream.runCollect
        )
        assert.deepStrictEqual(
          seen.map((e) => e.type),
          ["command.started", "command.started", "command.completed"]
        )
        const [first] = seen
        assert.strictEqual(first?.type === "command.started" ? first.data.runner : undefined, `docker:${container}`)
      })
    )

    it.effect("Stages.runnerLayer runs commands in a node by name", () =>
      Effect.gen(function* () {
        const runner = yield* CommandRunner.CommandRunner
        const result = yield* runner.run({ program: "hostname" })
        assert.strictEqual(result.stdout.trim(), "client1")
      }).pipe(Effect.provide(Stages.runnerLayerFor("client1")))
    )
  })
})
