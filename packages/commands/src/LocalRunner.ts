/**
 * Runs commands on this machine, on `effect/process`. Each command leads its own process group (the Node
 * spawner starts children `detached`), so a timeout or an interruption signals the whole group: TERM, then
 * KILL after the grace period. No grandchild outlives its command.
 */
import type { EventBus } from "@testbed/events"
import { Array as Arr, Clock, Deferred, Effect, Layer, type PlatformError, type Scope, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { stat } from "node:fs/promises"
import * as Command from "./Command.ts"
import { type CommandError, CommandInvalid, CommandNotFound, CommandSpawnFailed } from "./CommandError.ts"
import type { CommandResult, OutputChunk } from "./CommandResult.ts"
import * as CommandRunner from "./CommandRunner.ts"
import * as ExitStatus from "./ExitStatus.ts"
import * as OutputCapture from "./OutputCapture.ts"
import * as Watchdog from "./Watchdog.ts"

/** A spawned attempt: its output streams (captured as they are read) and the result once it has ended. */
interface Running {
  readonly stdout: Stream.Stream<Uint8Array>
  readonly stderr: Stream.Stream<Uint8Array>
  /** Waits for the exit, then builds the result; fails unless the exit code counts as success. */
  readonly finish: Effect.Effect<CommandResult, CommandError>
}

const spawnError = (
  command: CommandRunner.ValidCommand,
  program: string,
  error: PlatformError.PlatformError
): CommandError => {
  const reason = error.reason
  if (reason._tag === "NotFound") return new CommandNotFound({ commandId: command.id, program })
  if (reason._tag === "PermissionDenied") {
    return new CommandSpawnFailed({ commandId: command.id, program, reason: "permission denied" })
  }
  return new CommandSpawnFailed({ commandId: command.id, program, reason: error.message })
}

/**
 * Node throws (rather than reports) some refusals of the kernel at spawn: E2BIG, an argument list longer than it
 * takes; EINVAL. Those are the command's, not a bug of ours: a typed `CommandSpawnFailed` naming the code.
 */
const thrownAtSpawn = (command: CommandRunner.ValidCommand, program: string, defect: unknown): CommandError => {
  const error = defect as { readonly code?: unknown; readonly message?: unknown } | null
  const code = typeof error?.code === "string" ? error.code : undefined
  const text = typeof error?.message === "string" && error.message !== "" ? error.message : String(defect)
  const reason =
    code === "E2BIG"
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

const environment = (command: Command.Command) =>
  command.envMode === "replace"
    ? { env: { ...command.env }, extendEnv: false }
    : command.env !== undefined
      ? { env: { ...command.env }, extendEnv: true }
      : {}

/** Starts the process, leading its own process group, with every refusal typed. */
const spawnProcess = Effect.fn("LocalRunner.spawn")(function* (
  spawner: ChildProcessSpawner.ChildProcessSpawner["Service"],
  command: CommandRunner.ValidCommand
) {
  const { program, args } = Command.argv(command)
  yield* checkCwd(command, program)
  return yield* spawner
    .spawn(
      ChildProcess.make(program, [...args], {
        ...(command.cwd !== undefined ? { cwd: command.cwd } : {}),
        ...environment(command),
        stdin: command.stdin !== undefined ? Stream.make(new TextEncoder().encode(command.stdin)) : "ignore",
        stdout: "pipe",
        stderr: "pipe",
        // Own process group, so the group can be signalled; these options also govern release on interruption.
        detached: true,
        killSignal: "SIGTERM",
        forceKillAfter: command.killGracePeriod ?? Command.defaultKillGracePeriod
      })
    )
    .pipe(
      Effect.mapError((error) => spawnError(command, program, error)),
      Effect.catchDefect((defect) => Effect.fail(thrownAtSpawn(command, program, defect)))
    )
})

type Handle = Effect.Success<ReturnType<typeof spawnProcess>>

/**
 * Waits for the leader to exit (ending the group at the command's timeout: TERM, then KILL after the grace period)
 * and completes `exited`. Once the leader has gone, what is left of its group (background jobs holding the pipes
 * open) is ended too, so reading the output always finishes. Returns whether the timeout struck.
 */
const supervise = (
  command: CommandRunner.ValidCommand,
  handle: Handle,
  exited: Deferred.Deferred<ExitStatus.ExitStatus>
): Effect.Effect<{ readonly timedOut: () => boolean }, never, Scope.Scope> => {
  const grace = command.killGracePeriod ?? Command.defaultKillGracePeriod
  const stop = Effect.ignore(handle.kill({ killSignal: "SIGTERM", forceKillAfter: grace }))
  // After a normal exit the group is usually empty already; asking the kernel is much cheaper than the
  // spawner's kill path, which builds errors when there is nothing left to signal.
  const groupExists = Effect.try({ try: () => process.kill(-handle.pid, 0), catch: () => false }).pipe(
    Effect.orElseSucceed(() => false)
  )
  const stopLeftovers = Effect.flatMap(groupExists, (exists) => (exists ? stop : Effect.void))
  let timedOut = false
  const waitExit = Effect.map(Effect.exit(handle.exitCode), ExitStatus.fromExit)
  const supervised =
    command.timeout === undefined
      ? Effect.tap(waitExit, () => stopLeftovers)
      : Effect.flatMap(Effect.timeoutOption(waitExit, command.timeout), (status) => {
          if (status._tag === "Some") return Effect.as(stopLeftovers, status.value)
          timedOut = true
          return Effect.andThen(stop, waitExit)
        })
  return Effect.as(Effect.forkScoped(Effect.flatMap(supervised, (status) => Deferred.succeed(exited, status))), {
    timedOut: () => timedOut
  })
}

/** The output as it is read, kept (bounded) in `capture`. A failing read of our own pipe is not the command's doing. */
const captured = (
  source: Stream.Stream<Uint8Array, PlatformError.PlatformError>,
  capture: OutputCapture.OutputCapture
): Stream.Stream<Uint8Array> =>
  source.pipe(
    // Per batch, not per chunk: one call for everything a pull returned keeps large outputs fast.
    Stream.mapArray((batch) => {
      for (const bytes of batch) capture.push(bytes)
      return batch
    }),
    Stream.orDie
  )

const spawnAttempt = Effect.fn("LocalRunner.attempt")(function* (
  spawner: ChildProcessSpawner.ChildProcessSpawner["Service"],
  command: CommandRunner.ValidCommand
): Effect.fn.Return<Running, CommandError, Scope.Scope> {
  const startedAt = yield* Clock.currentTimeMillis
  const handle = yield* spawnProcess(spawner, command)
  const exited = yield* Deferred.make<ExitStatus.ExitStatus>()
  const supervision = yield* supervise(command, handle, exited)
  const stdout = OutputCapture.make(command.maxOutputBytes ?? Command.defaultMaxOutputBytes)
  const stderr = OutputCapture.make(command.maxOutputBytes ?? Command.defaultMaxOutputBytes)
  const finish = Effect.gen(function* () {
    const status = yield* Deferred.await(exited)
    const endedAt = yield* Clock.currentTimeMillis
    const observed = { ...status, stdout, stderr, startedAt, endedAt, timedOut: supervision.timedOut() }
    return yield* CommandRunner.judge(command, CommandRunner.attemptResult(command, observed))
  })
  return { stdout: captured(handle.stdout, stdout), stderr: captured(handle.stderr, stderr), finish }
})

const chunks = (running: Running): Stream.Stream<OutputChunk, CommandError> =>
  Stream.merge(
    Stream.mapArray(running.stdout, (batch) => Arr.map(batch, (bytes): OutputChunk => ({ _tag: "Stdout", bytes }))),
    Stream.mapArray(running.stderr, (batch) => Arr.map(batch, (bytes): OutputChunk => ({ _tag: "Stderr", bytes })))
  ).pipe(
    Stream.concat(Stream.fromEffect(Effect.map(running.finish, (result): OutputChunk => ({ _tag: "Exit", result }))))
  )

const makeAttempt = (spawner: ChildProcessSpawner.ChildProcessSpawner["Service"]): CommandRunner.Attempt => ({
  name: "local",
  run: (command) =>
    Effect.scoped(
      Effect.gen(function* () {
        const running = yield* spawnAttempt(spawner, command)
        yield* Effect.all([Stream.runDrain(running.stdout), Stream.runDrain(running.stderr)], {
          concurrency: 2,
          discard: true
        })
        return yield* running.finish
      })
    ),
  stream: (command) => Stream.unwrap(Effect.map(spawnAttempt(spawner, command), chunks))
})

/**
 * The local runner: needs the event bus and a `ChildProcessSpawner` (`NodeServices.layer`). Every command's
 * process group is guarded by the `Watchdog`, so it dies with this process even when that is SIGKILLed.
 */
export const layer: Layer.Layer<
  CommandRunner.CommandRunner,
  never,
  EventBus.EventBus | ChildProcessSpawner.ChildProcessSpawner
> = Layer.effect(
  CommandRunner.CommandRunner,
  Effect.flatMap(ChildProcessSpawner.ChildProcessSpawner, (spawner) =>
    CommandRunner.make(makeAttempt(Watchdog.spawner(spawner)))
  )
)
