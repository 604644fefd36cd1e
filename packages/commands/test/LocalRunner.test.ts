import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Command, type CommandResult, CommandRunner, OutputCapture, Sequence } from "../src/index.ts"
import {
  collectEvents,
  dataOf,
  isRunning,
  LocalLayer,
  retainedBytes,
  runningGroupMembers
} from "./fixtures/processes.ts"

const withRunner = <A, E, R>(f: (runner: CommandRunner.CommandRunner["Service"]) => Effect.Effect<A, E, R>) =>
  Effect.provide(Effect.flatMap(CommandRunner.CommandRunner, f), LocalLayer)

const pidsOf = (text: string) =>
  text
    .trim()
    .split("\n")
    .filter((line) => line !== "")
    .map(Number)

// A shell that records its own pid and a background child's pid, then waits on two sleeps forever-ish.
const family = "echo $$; sleep 100 & echo $!; sleep 100; wait"

describe("LocalRunner", () => {
  it.live("captures stdout, stderr and the exit code of a program run without a shell", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const result = yield* runner.run(Command.make("printf", ["%s|%s", "a b", "$HOME"]))
        assert.strictEqual(result.stdout, "a b|$HOME")
        assert.strictEqual(result.exitCode, 0)
        assert.strictEqual(result.signal, null)
        assert.strictEqual(result.attempts, 1)
        assert.isFalse(result.timedOut)
        assert.isFalse(result.truncated)
        const mixed = yield* runner.run(Command.shell("echo out; echo err >&2"))
        assert.deepStrictEqual([mixed.stdout, mixed.stderr], ["out\n", "err\n"])
      })
    )
  )

  it.live("a non-zero exit fails with CommandFailed carrying the result, unless listed as success", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(runner.run(Command.shell("echo partial; exit 3")))
        assert.strictEqual(error._tag, "CommandFailed")
        if (error._tag !== "CommandFailed") return
        assert.strictEqual(error.result.exitCode, 3)
        assert.strictEqual(error.result.stdout, "partial\n")
        const accepted = yield* runner.run(Command.shell("exit 3", { successExitCodes: [0, 3] }))
        assert.strictEqual(accepted.exitCode, 3)
      })
    )
  )

  it.live("a command line longer than the kernel takes (E2BIG) is a typed CommandSpawnFailed, and the next runs", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const huge = Command.shell(`echo ${"x".repeat(1024 * 1024)}`)
        const error = yield* Effect.flip(runner.run(huge))
        assert.strictEqual(error._tag, "CommandSpawnFailed")
        assert.include(error._tag === "CommandSpawnFailed" ? error.reason : "", "E2BIG")
        assert.strictEqual((yield* runner.run(Command.shell("echo next"))).stdout, "next\n")
        const streamed = yield* Effect.flip(Stream.runDrain(runner.stream(huge)))
        assert.strictEqual(streamed._tag, "CommandSpawnFailed")
      })
    )
  )

  it.live("a process killed by a signal reports the signal and no exit code", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(runner.run(Command.shell("kill -USR1 $$")))
        assert.strictEqual(error._tag, "CommandFailed")
        if (error._tag !== "CommandFailed") return
        assert.strictEqual(error.result.signal, "SIGUSR1")
        assert.strictEqual(error.result.exitCode, null)
      })
    )
  )

  it.live("a missing program, a missing cwd and a file that cannot be executed are distinct typed errors", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "commands-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const notExecutable = join(dir, "script.sh")
        writeFileSync(notExecutable, "#!/bin/sh\necho hi\n")
        chmodSync(notExecutable, 0o644)

        const missing = yield* Effect.flip(runner.run(Command.make("testbed-no-such-program-xyz")))
        assert.deepStrictEqual(
          [missing._tag, "program" in missing ? missing.program : ""],
          ["CommandNotFound", "testbed-no-such-program-xyz"]
        )
        const badCwd = yield* Effect.flip(runner.run(Command.make("ls", [], { cwd: join(dir, "nope") })))
        assert.strictEqual(badCwd._tag, "CommandInvalid")
        assert.strictEqual(badCwd._tag === "CommandInvalid" ? badCwd.field : "", "cwd")
        const fileCwd = yield* Effect.flip(runner.run(Command.make("ls", [], { cwd: notExecutable })))
        assert.strictEqual(fileCwd._tag, "CommandSpawnFailed")
        const denied = yield* Effect.flip(runner.run(Command.make(notExecutable)))
        assert.strictEqual(denied._tag, "CommandSpawnFailed")
        assert.include(denied._tag === "CommandSpawnFailed" ? denied.reason : "", "permission")
      })
    )
  )

  it.live("a timeout ends the whole process group: TERM, then KILL; no grandchild survives", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          runner.run(Command.shell(family, { timeout: Duration.seconds(2), killGracePeriod: Duration.seconds(1) }))
        )
        assert.strictEqual(error._tag, "CommandTimedOut")
        if (error._tag !== "CommandTimedOut") return
        assert.strictEqual(error.timeoutMs, 2000)
        assert.isTrue(error.result.timedOut)
        assert.isNotNull(error.result.signal)
        const [shell, background] = pidsOf(error.result.stdout)
        assert.isDefined(shell)
        assert.isDefined(background)
        assert.isFalse(isRunning(shell as number), "the shell survived")
        assert.isFalse(isRunning(background as number), "the background sleep survived")
        // The foreground sleep's pid was never printed: no member of the group may be left.
        assert.deepStrictEqual(runningGroupMembers(shell as number), [])
      })
    )
  )

  it.live("a process that ignores TERM is killed after the grace period", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          runner.run(
            Command.shell("trap '' TERM; echo $$; sleep 100 & echo $!; wait", {
              timeout: Duration.seconds(1),
              killGracePeriod: Duration.millis(500)
            })
          )
        )
        assert.strictEqual(error._tag, "CommandTimedOut")
        if (error._tag !== "CommandTimedOut") return
        assert.strictEqual(error.result.signal, "SIGKILL")
        const [shell, background] = pidsOf(error.result.stdout)
        assert.isFalse(isRunning(shell as number))
        assert.isFalse(isRunning(background as number))
        assert.deepStrictEqual(runningGroupMembers(shell as number), [])
      })
    )
  )

  it.live("interrupting run() from the caller kills the process group and reports the interruption", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "commands-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const pidFile = join(dir, "pids")
        const events = yield* Effect.forkChild(yield* collectEvents(2, ["command.started", "command.failed"]))
        const fiber = yield* runner
          .run(
            Command.shell(`{ echo $$; sleep 100 & echo $!; } > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; wait`, {
              id: "interrupted-run",
              killGracePeriod: Duration.seconds(1)
            })
          )
          .pipe(Effect.forkChild)
        // Wait (bounded) until the script has written both pids, then interrupt.
        yield* Effect.suspend(() => (existsSync(pidFile) ? Effect.void : Effect.fail("not yet"))).pipe(
          Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo({ duration: "20 seconds" })))
        )
        const [shell, background] = pidsOf(readFileSync(pidFile, "utf8"))
        assert.isTrue(isRunning(background as number))
        yield* Fiber.interrupt(fiber)
        assert.isFalse(isRunning(shell as number))
        assert.isFalse(isRunning(background as number))
        assert.deepStrictEqual(runningGroupMembers(shell as number), [])
        const seen = yield* Fiber.join(events)
        assert.deepStrictEqual(
          seen.map((event) => [event.type, event.entityId]),
          [
            ["command.started", "interrupted-run"],
            ["command.failed", "interrupted-run"]
          ]
        )
        assert.strictEqual(dataOf(seen[1]).reason, "interrupted")
      })
    )
  )

  it.live("ending a stream early kills the process group, and the run is reported as ended", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const events = yield* Effect.forkChild(yield* collectEvents(2))
        const text = yield* runner
          .stream(Command.shell(family, { id: "early", killGracePeriod: Duration.seconds(1) }))
          .pipe(
            Stream.map((chunk) => (chunk._tag === "Stdout" ? Buffer.from(chunk.bytes).toString("utf8") : "")),
            Stream.scan(
              () => "",
              (all: string, piece: string) => all + piece
            ),
            Stream.takeUntil((all) => pidsOf(all).length >= 2),
            Stream.runLast
          )
        const [shell, background] = pidsOf(text._tag === "Some" ? text.value : "")
        assert.isDefined(background)
        assert.isFalse(isRunning(shell as number))
        assert.isFalse(isRunning(background as number))
        assert.deepStrictEqual(runningGroupMembers(shell as number), [])
        const seen = yield* Fiber.join(events)
        assert.deepStrictEqual(
          seen.map((event) => [event.type, event.entityId, dataOf(event).reason]),
          [
            ["command.started", "early", undefined],
            ["command.failed", "early", "stopped before the end"]
          ]
        )
      })
    )
  )

  it.live("replace mode passes only the given environment; extend mode adds to the parent's", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const isolated = yield* runner.run(Command.make("env", [], { env: { ONLY: "this" }, envMode: "replace" }))
        assert.strictEqual(isolated.stdout, "ONLY=this\n")
        const empty = yield* runner.run(Command.make("/usr/bin/env", [], { envMode: "replace" }))
        assert.strictEqual(empty.stdout, "")
        const extended = yield* runner.run(Command.make("env", [], { env: { ADDED: "1" } }))
        const names = extended.stdout.split("\n").map((line) => line.split("=")[0])
        assert.include(names, "ADDED")
        assert.include(names, "PATH")
      })
    )
  )

  it.live("stdin is delivered to the process", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const result = yield* runner.run(Command.make("cat", [], { stdin: "line one\nline two" }))
        assert.strictEqual(result.stdout, "line one\nline two")
      })
    )
  )

  it.live("a successful command's leftover background jobs are ended, so its output always finishes", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const result = yield* runner.run(
          Command.shell("echo $$; sleep 100 & echo $!", { killGracePeriod: Duration.millis(500) })
        )
        const [shell, background] = pidsOf(result.stdout)
        assert.strictEqual(result.exitCode, 0)
        assert.isFalse(isRunning(shell as number))
        assert.isFalse(isRunning(background as number))
      })
    )
  )

  it.live("stream() delivers every chunk, tagged, then the result; a failure fails after the output", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const chunks = yield* Stream.runCollect(runner.stream(Command.shell("printf out; printf err >&2")))
        const text = (tag: string) =>
          chunks
            .filter((chunk) => chunk._tag === tag)
            .map((chunk) => (chunk._tag === "Exit" ? "" : Buffer.from(chunk.bytes).toString("utf8")))
            .join("")
        assert.deepStrictEqual([text("Stdout"), text("Stderr")], ["out", "err"])
        const last = chunks[chunks.length - 1]
        assert.strictEqual(last?._tag, "Exit")
        assert.strictEqual(last?._tag === "Exit" ? last.result.stdout : "", "out")

        const seen: Array<string> = []
        const error = yield* runner.stream(Command.shell("printf before; exit 4")).pipe(
          Stream.runForEach((chunk) => Effect.sync(() => seen.push(chunk._tag))),
          Effect.flip
        )
        assert.deepStrictEqual(seen, ["Stdout"])
        assert.strictEqual(error._tag, "CommandFailed")
        assert.strictEqual(error._tag === "CommandFailed" ? error.result.exitCode : -1, 4)
      })
    )
  )

  it.live(
    "200 MB of output: capture stays bounded and says truncated; the stream still delivers every byte",
    () =>
      withRunner((runner) =>
        Effect.gen(function* () {
          const total = 200_000_000
          const limit = 4096
          const output = (bytes: number) =>
            Command.make("head", ["-c", String(bytes), "/dev/zero"], { maxOutputBytes: limit })
          // Warm both paths first, so code loaded and compiled on first use is not counted as retained output.
          yield* runner.run(output(1_000_000))
          yield* Stream.runDrain(runner.stream(output(1_000_000)))
          const baseline = retainedBytes()
          let peak = 0
          // Sampled while the output flows: keeping it would grow toward 200 MB; bounded capture stays flat.
          const sampler = yield* Effect.forkChild(
            Effect.forever(
              Effect.andThen(
                Effect.sleep("250 millis"),
                Effect.sync(() => {
                  peak = Math.max(peak, retainedBytes() - baseline)
                })
              )
            )
          )
          let bytes = 0
          let exit: CommandResult.CommandResult | undefined
          yield* runner.stream(output(total)).pipe(
            Stream.runForEach((chunk) =>
              Effect.sync(() => {
                if (chunk._tag === "Exit") exit = chunk.result
                else bytes += chunk.bytes.length
              })
            )
          )
          yield* Fiber.interrupt(sampler)
          assert.strictEqual(bytes, total)
          assert.isTrue(exit?.truncated)
          // The first and the last half of the limit, and the marker saying how much was left out between them.
          assert.strictEqual(exit?.stdout.length, limit + OutputCapture.cutMarker(total - limit).length)
          assert.isBelow(peak, 96 * 1024 * 1024, `retained ${peak} bytes while 200 MB went through`)

          // run() keeps the same bound (a smaller output keeps the suite fast).
          const result = yield* runner.run(output(20_000_000))
          assert.isTrue(result.truncated)
          assert.strictEqual(result.stdout.length, limit + OutputCapture.cutMarker(20_000_000 - limit).length)
        })
      ),
    180_000
  )

  it.effect("a real failing command is retried on the test clock: one start per attempt, spaced by the backoff", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const events = yield* Effect.forkChild(yield* collectEvents(5, ["command.started", "command.failed"]))
      const fiber = yield* runner
        .run(Command.make("false", [], { id: "flaky", retries: { times: 3, backoff: Duration.seconds(1), factor: 2 } }))
        .pipe(Effect.flip, Effect.forkChild)
      // The process runs in real time; the backoff sleeps only pass when the test clock is moved.
      const stepper = yield* Effect.forkChild(
        Effect.forever(Effect.andThen(TestClock.adjust("50 millis"), TestClock.withLive(Effect.sleep("2 millis"))))
      )
      const error = yield* Fiber.join(fiber)
      yield* Fiber.interrupt(stepper)
      assert.strictEqual(error._tag, "CommandFailed")
      const seen = yield* Fiber.join(events)
      const starts = seen.filter((event) => event.type === "command.started")
      assert.deepStrictEqual(
        starts.map((event) => dataOf(event).attempt),
        [1, 2, 3, 4]
      )
      const times = starts.map((event) => Date.parse(event.timestamp))
      const gaps = times.slice(1).map((time, index) => time - (times[index] as number))
      for (const [index, gap] of gaps.entries()) {
        assert.isAtLeast(gap, 1000 * 2 ** index, `gap before attempt ${index + 2}`)
      }
      const failed = seen.find((event) => event.type === "command.failed")
      assert.deepStrictEqual([failed?.entityId, dataOf(failed).attempts, dataOf(failed).exitCode], ["flaky", 4, 1])
    }).pipe(Effect.provide(LocalLayer))
  )

  // Sequence's logic is Sequence.test's (scripted runner); this is the same on real processes.
  it.live("a sequence on real processes: output and exit codes recorded, a missing program failed, the rest run", () =>
    Effect.gen(function* () {
      const outcome = yield* Sequence.run([
        Command.shell("echo broken >&2; exit 7", { id: "two" }),
        Command.make("testbed-no-such-program-xyz", [], { id: "three" }),
        Command.shell("echo four", { id: "four" }),
        Command.shell("exit 1", { id: "migrate", critical: true }),
        Command.make("echo", ["never"], { id: "never" })
      ])
      assert.deepStrictEqual(
        outcome.steps.map((step) => [step.commandId, step.status, step.error]),
        [
          ["two", "failed", "CommandFailed"],
          ["three", "failed", "CommandNotFound"],
          ["four", "succeeded", undefined],
          ["migrate", "failed", "CommandFailed"],
          ["never", "skipped", undefined]
        ]
      )
      assert.deepStrictEqual([outcome.steps[0]?.reason, outcome.steps[0]?.result?.stderr], ["exit code 7", "broken\n"])
      assert.strictEqual(outcome.steps[2]?.result?.stdout, "four\n")
      assert.strictEqual(outcome.stoppedBy, "migrate")
    }).pipe(Effect.provide(LocalLayer))
  )
})
