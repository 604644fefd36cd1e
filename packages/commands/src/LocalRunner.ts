/**
 * Runs commands on this machine. Each command leads its own process group (spawned `detached`, listed with the
 * `Watchdog`), so a timeout or an interruption signals the whole group: TERM, then KILL after the grace period. No
 * grandchild outlives its command, not even when this process is SIGKILLed. Spawned on `node:child_process`
 * directly (`internal/GroupProcess`): a run reads its pipes by Node's own events, without the per-pipe streams,
 * fibers and scope of `effect/process`, which cost as much CPU per command as the spawn itself; and started by the
 * spawn helper (`internal/SpawnHelper`), so this process, however large, is not forked per command.
 */
import type { EventBus } from "@testbed/events"
import { Clock, Deferred, type Duration, Effect, Layer, Stream } from "effect"
import { stat } from "node:fs/promises"
import { Readable } from "node:stream"
import * as Command from "./Command.ts"
import { type CommandError, CommandInvalid, CommandNotFound, CommandSpawnFailed } from "./CommandError.ts"
import type { CommandResult, OutputChunk } from "./CommandResult.ts"
import * as CommandRunner from "./CommandRunner.ts"
import * as GroupProcess from "./internal/GroupProcess.ts"
import * as SpawnHelper from "./internal/SpawnHelper.ts"
import * as OutputCapture from "./OutputCapture.ts"
import * as Watchdog from "./Watchdog.ts"

/** Why the kernel refused to start the program, typed: missing, not executable, or something else named. */
const spawnError = (
  command: CommandRunner.ValidCommand,
  program: string,
  refused: GroupProcess.Refused
): CommandError => {
  if (refused.code === "ENOENT") return new CommandNotFound({ commandId: command.id, program })
  if (refused.code === "EACCES") {
    return new CommandSpawnFailed({ commandId: command.id, program, reason: "permission denied" })
  }
  const text = refused.message
  // E2BIG: an argument list longer than the kernel takes. The command's, not a bug of ours.
  const reason =
    refused.code === "E2BIG"
      ? `${text.includes("E2BIG") ? text : `E2BIG: ${text}`} (Argument list too long: the command line is longer than the kernel accepts)`
      : text
  return new CommandSpawnFailed({ commandId: command.id, program, reason: reason.slice(0, 512) })
}

/** A missing cwd is the caller's mistake (`CommandInvalid`); one that is not a directory cannot be entered. */
const checkCwd = (command: CommandRunner.ValidCommand, program: string): Effect.Effect<void, CommandError> => {
  const cwd = command.cwd
  if (cwd === undefined) return Effect.void
  return Effect.tryPromise({ try: () => stat(cwd), catch: (cause) => cause }).pipe(
    Effect.matchEffect({
      onFailure: (cause): Effect.Effect<void, CommandError> =>
        (cause as { code?: string }).code === "ENOENT"
          ? Effect.fail(new CommandInvalid({ commandId: command.id, field: "cwd", reason: `does not exist: ${cwd}` }))
          : Effect.fail(
              new CommandSpawnFailed({
                commandId: command.id,
                program,
                reason: `cannot use cwd ${cwd}: ${String(cause)}`
              })
            ),
      onSuccess: (stats): Effect.Effect<void, CommandError> =>
        stats.isDirectory()
          ? Effect.void
          : Effect.fail(
              new CommandSpawnFailed({ commandId: command.id, program, reason: `cwd is not a directory: ${cwd}` })
            )
    })
  )
}

/** The child's whole environment: only `env` (replace), the parent's plus `env` (extend), or the parent's. */
const environment = (command: Command.Command): NodeJS.ProcessEnv | undefined =>
  command.envMode === "replace"
    ? { ...command.env }
    : command.env !== undefined
      ? { ...process.env, ...command.env }
      : undefined

/** Starts the process, leading its own process group (guarded by the `Watchdog`), with every refusal typed. */
const startProcess = (command: CommandRunner.ValidCommand): Effect.Effect<GroupProcess.GroupProcess, CommandError> => {
  const { program, args } = Command.argv(command)
  return Effect.andThen(
    checkCwd(command, program),
    GroupProcess.start({ program, args, cwd: command.cwd, env: environment(command), stdin: command.stdin }).pipe(
      Effect.mapError((refused) => spawnError(command, program, refused))
    )
  )
}

const graceOf = (command: Command.Command): Duration.Duration =>
  command.killGracePeriod ?? Command.defaultKillGracePeriod

/** How the leader ended, and whether the command's timeout struck first. */
interface Ended {
  readonly status: GroupProcess.Exited
  readonly timedOut: boolean
}

/**
 * Waits for the leader to exit, ending the group at the command's timeout (TERM, then KILL after the grace period).
 * Once the leader has gone, what is left of its group (background jobs holding the pipes open) is ended too, so
 * reading the output always finishes.
 */
const awaitEnd = (command: CommandRunner.ValidCommand, running: GroupProcess.GroupProcess): Effect.Effect<Ended> => {
  const grace = graceOf(command)
  const exit = GroupProcess.awaitExit(running)
  const exitedInTime = (status: GroupProcess.Exited) =>
    Effect.as(GroupProcess.endLeftovers(running, grace), { status, timedOut: false })
  if (command.timeout === undefined) return Effect.flatMap(exit, exitedInTime)
  return Effect.flatMap(Effect.timeoutOption(exit, command.timeout), (status) =>
    status._tag === "Some"
      ? exitedInTime(status.value)
      : Effect.map(Effect.andThen(GroupProcess.terminate(running.pid, grace), exit), (late) => ({
          status: late,
          timedOut: true
        }))
  )
}

/** Captures of a command's stdout and stderr, each bounded by its `maxOutputBytes`. */
const captures = (command: Command.Command) => {
  const limit = command.maxOutputBytes ?? Command.defaultMaxOutputBytes
  return { stdout: OutputCapture.make(limit), stderr: OutputCapture.make(limit) }
}

/** The attempt's result from what was seen, judged by the command's rules. */
const finish = (
  command: CommandRunner.ValidCommand,
  ended: Ended,
  output: ReturnType<typeof captures>,
  startedAt: number
): Effect.Effect<CommandResult, CommandError> =>
  Effect.flatMap(Clock.currentTimeMillis, (endedAt) =>
    CommandRunner.judge(
      command,
      CommandRunner.attemptResult(command, { ...ended.status, ...output, startedAt, endedAt, timedOut: ended.timedOut })
    )
  )

/**
 * One attempt to completion: the pipes are read by Node's own `data` events straight into the bounded captures,
 * no stream, fiber or scope in between. Interruption (and any exit from here) ends what is left of the group.
 */
const runAttempt = Effect.fn("LocalRunner.run")(function* (command: CommandRunner.ValidCommand) {
  const startedAt = yield* Clock.currentTimeMillis
  return yield* Effect.acquireUseRelease(
    startProcess(command),
    (running) => {
      const output = captures(command)
      running.child.stdout?.on("data", output.stdout.push)
      running.child.stderr?.on("data", output.stderr.push)
      return Effect.flatMap(awaitEnd(command, running), (ended) =>
        Effect.andThen(GroupProcess.awaitClosed(running), finish(command, ended, output, startedAt))
      )
    },
    (running) => GroupProcess.release(running, graceOf(command))
  )
})

/**
 * A pipe's bytes as a stream that pulls (so a slow reader slows the child down), kept (bounded) as they pass. The
 * reader is attached now, not when the stream is first pulled: Node drops the output of a pipe nobody reads when
 * the child exits (it resumes the pipe to flush it).
 */
const pipeStream = (pipe: Readable | null, capture: OutputCapture.OutputCapture): Stream.Stream<Uint8Array> => {
  if (pipe === null) return Stream.empty
  // A web stream, whose reader attaches here; the pipe's own async iterator would attach only at its first pull.
  const web = Readable.toWeb(pipe) as ReadableStream<Uint8Array>
  return Stream.fromReadableStream({ evaluate: () => web, onError: (error) => error }).pipe(
    Stream.tap((bytes) => Effect.sync(() => capture.push(bytes))),
    // A failing read of our own pipe is not the command's doing.
    Stream.orDie
  )
}

/** One attempt as output chunks, then the `Exit` chunk; leaving the stream early ends the group. */
const streamAttempt = (command: CommandRunner.ValidCommand): Stream.Stream<OutputChunk, CommandError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      const running = yield* Effect.acquireRelease(startProcess(command), (started) =>
        GroupProcess.release(started, graceOf(command))
      )
      const output = captures(command)
      // The leader's end is watched beside the reading, so leftovers holding the pipes are ended and reading ends.
      const ended = yield* Deferred.make<Ended>()
      yield* Effect.forkScoped(Effect.flatMap(awaitEnd(command, running), (end) => Deferred.succeed(ended, end)))
      const result = Effect.flatMap(Deferred.await(ended), (end) => finish(command, end, output, startedAt))
      const stdout = pipeStream(running.child.stdout, output.stdout)
      const stderr = pipeStream(running.child.stderr, output.stderr)
      return Stream.merge(
        Stream.map(stdout, (bytes): OutputChunk => ({ _tag: "Stdout", bytes })),
        Stream.map(stderr, (bytes): OutputChunk => ({ _tag: "Stderr", bytes }))
      ).pipe(
        Stream.concat(Stream.fromEffect(Effect.map(result, (done): OutputChunk => ({ _tag: "Exit", result: done }))))
      )
    })
  )

const attempt: CommandRunner.Attempt = { name: "local", run: runAttempt, stream: streamAttempt }

/**
 * The local runner: needs the event bus. Every command's process group is guarded by the `Watchdog`, so it dies
 * with this process even when that is SIGKILLed.
 */
export const layer: Layer.Layer<CommandRunner.CommandRunner, never, EventBus.EventBus> = Layer.effect(
  CommandRunner.CommandRunner,
  Effect.suspend(() => {
    // Started now, not at the first command: starting it forks this process, which under load takes long enough
    // for a SIGKILL to land between a command's start and its registration.
    Watchdog.start()
    // The spawn helper too: its start is the last fork of this process.
    SpawnHelper.start()
    return CommandRunner.make(attempt)
  })
)
