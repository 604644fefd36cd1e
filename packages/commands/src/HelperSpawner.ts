/**
 * A `ChildProcessSpawner` that starts its processes through the spawn helper (`internal/SpawnHelper`: a small
 * process forks, not this one, whose heap may be hundreds of MB), for the commands services are: one program with
 * its arguments, leading its own process group, stdin ignored or fed from a stream, stdout and stderr piped or
 * ignored. Anything else (pipelines, shells, extra file descriptors, an interactive stdin, inherited output, a
 * process in this group), and everything when the helper is off (`TESTBED_SPAWN_DIRECT=1`, Windows), goes to the
 * spawner it wraps. What a handle does follows effect's Node spawner: release and `kill` signal the group (TERM, or
 * the command's `killSignal`), wait for it (up to `forceKillAfter`, then KILL, then at most a second more), and a
 * leader ended by a signal fails `exitCode` with "Process interrupted due to receipt of signal: 'SIG…'".
 */
import { Deferred, Duration, Effect, Exit, PlatformError, Predicate, Redacted, Sink, Stream } from "effect"
import { type ChildProcess, ChildProcessSpawner } from "effect/process"
import { resolve } from "node:path"
import { Readable } from "node:stream"
import * as SpawnHelper from "./internal/SpawnHelper.ts"
import * as Watchdog from "./Watchdog.ts"

type Spawner = ChildProcessSpawner.ChildProcessSpawner["Service"]
type Exited = readonly [code: number | null, signal: NodeJS.Signals | null]

const unwrap = (value: string | Redacted.Redacted<string>): string =>
  Redacted.isRedacted(value) ? Redacted.value(value) : value

/** stdin as the helper takes it: ignored, or a pipe fed from this stream; undefined when not ours to start. */
const inputOf = (
  option: ChildProcess.CommandOptions["stdin"]
):
  | { readonly kind: "ignore" }
  | { readonly kind: "stream"; readonly stream: Stream.Stream<Uint8Array, unknown> }
  | undefined => {
  const value = Predicate.isObject(option) && !Stream.isStream(option) ? option.stream : option
  if (value === "ignore") return { kind: "ignore" }
  if (Stream.isStream(value)) return { kind: "stream", stream: value as Stream.Stream<Uint8Array, unknown> }
  return undefined
}

/** stdout or stderr as the helper takes it ("pipe" by default, as effect's); undefined when not ours to start. */
const outputOf = (option: ChildProcess.CommandOptions["stdout"]): "pipe" | "ignore" | undefined => {
  const value = Predicate.isObject(option) && !Sink.isSink(option) ? option.stream : option
  if (value === undefined || value === "pipe") return "pipe"
  if (value === "ignore") return "ignore"
  return undefined
}

/** Whether the helper can start `command` as effect's Node spawner would. */
const supported = (command: ChildProcess.Command): command is ChildProcess.StandardCommand => {
  if (command._tag !== "StandardCommand") return false
  const options = command.options
  return (
    (options.shell === undefined || options.shell === false) &&
    options.detached !== false &&
    options.additionalFds === undefined &&
    inputOf(options.stdin) !== undefined &&
    outputOf(options.stdout) !== undefined &&
    outputOf(options.stderr) !== undefined &&
    !command.args.some((arg) => unwrap(arg).includes("\0"))
  )
}

/** The child's whole environment, as effect's spawner makes it (the helper's own is empty). */
const environment = (options: ChildProcess.CommandOptions): NodeJS.ProcessEnv => {
  if (options.env === undefined) return process.env
  const env: Record<string, string | undefined> = options.extendEnv === true ? { ...process.env } : {}
  for (const [key, value] of Object.entries(options.env)) {
    if (value === undefined) delete env[key]
    else env[key] = unwrap(value)
  }
  return env
}

const failure = (method: string, command: ChildProcess.StandardCommand, cause: unknown) => {
  const error = cause as NodeJS.ErrnoException
  const tag =
    error?.code === "ENOENT"
      ? "NotFound"
      : error?.code === "EACCES" || error?.code === "EPERM"
        ? "PermissionDenied"
        : "Unknown"
  return PlatformError.systemError({
    _tag: tag,
    module: "ChildProcess",
    method,
    pathOrDescriptor: [
      command.command,
      ...command.args.map((arg) => (Redacted.isRedacted(arg) ? "<redacted>" : arg))
    ].join(" "),
    ...(typeof error?.syscall === "string" ? { syscall: error.syscall } : {}),
    cause
  })
}

/** A pipe's bytes as a stream; its reader attaches now, so nothing is lost before the first pull. */
const pipeStream = (
  pipe: Readable | null,
  command: ChildProcess.StandardCommand
): Stream.Stream<Uint8Array, PlatformError.PlatformError> => {
  if (pipe === null) return Stream.empty
  const web = Readable.toWeb(pipe) as ReadableStream<Uint8Array>
  return Stream.fromReadableStream({ evaluate: () => web, onError: (error) => failure("fromReadable", command, error) })
}

/** The leader has not exited, or a member of its group is still there. */
const alive = (child: SpawnHelper.HelperChild, exited: boolean): boolean => {
  if (!exited) return true
  try {
    process.kill(-(child.pid as number), 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const startByHelper = (command: ChildProcess.StandardCommand) =>
  Effect.gen(function* () {
    const options = command.options
    const input = inputOf(options.stdin) ?? { kind: "ignore" as const }
    const exit = Deferred.makeUnsafe<Exited>()
    const child = yield* Effect.acquireRelease(
      Effect.callback<SpawnHelper.HelperChild, PlatformError.PlatformError>((resume) => {
        const started = SpawnHelper.spawn({
          program: command.command,
          args: command.args.map(unwrap),
          cwd: options.cwd === undefined ? undefined : resolve(options.cwd),
          env: environment(options),
          detached: true,
          stdio: [input.kind === "stream" ? "pipe" : "ignore", outputOf(options.stdout)!, outputOf(options.stderr)!]
        })
        if (started === undefined) {
          resume(Effect.fail(failure("spawn", command, new Error("the spawn helper is not running"))))
          return
        }
        started.once("exit", (code: number | null, signal: NodeJS.Signals | null) =>
          Deferred.doneUnsafe(exit, Exit.succeed([code, signal] as const))
        )
        started.once("spawn", () => resume(Effect.succeed(started)))
        started.once("error", (error: unknown) => {
          if (started.pid !== undefined) {
            try {
              process.kill(-started.pid, "SIGKILL")
            } catch {}
          }
          resume(Effect.fail(failure("spawn", command, error)))
        })
      }),
      (child) => Effect.ignore(terminate(child, exit, options))
    )
    const pid = child.pid as number
    child.stdout?.on("error", () => {})
    child.stderr?.on("error", () => {})
    const inputFailure = Deferred.makeUnsafe<never, PlatformError.PlatformError>()
    const stdin = child.stdin
    if (stdin !== null && input.kind === "stream") {
      stdin.on("error", () => {})
      yield* Effect.forkScoped(
        Stream.runForEach(input.stream, (bytes) =>
          Effect.callback<void>((resume) => {
            if (stdin.destroyed || stdin.write(bytes)) {
              resume(Effect.void)
              return
            }
            // Room again, or the child is gone (its input closed): either way this write is over.
            const over = () => {
              stdin.off("drain", over)
              stdin.off("close", over)
              resume(Effect.void)
            }
            stdin.once("drain", over)
            stdin.once("close", over)
            return Effect.sync(() => {
              stdin.off("drain", over)
              stdin.off("close", over)
            })
          })
        ).pipe(
          Effect.catch((error) => Deferred.fail(inputFailure, failure("stdin", command, error))),
          Effect.ensuring(Effect.sync(() => stdin.end()))
        )
      )
    }
    const stdout = pipeStream(child.stdout, command)
    const stderr = pipeStream(child.stderr, command)
    const exitCode = Effect.flatMap(
      Effect.raceFirst(Deferred.await(exit), Deferred.await(inputFailure)),
      ([code, signal]): Effect.Effect<ChildProcessSpawner.ExitCode, PlatformError.PlatformError> =>
        code !== null
          ? Effect.succeed(ChildProcessSpawner.ExitCode(code))
          : Effect.fail(
              failure("exitCode", command, new Error(`Process interrupted due to receipt of signal: '${signal}'`))
            )
    )
    let referenced = true
    return ChildProcessSpawner.makeHandle({
      pid: ChildProcessSpawner.ProcessId(pid),
      exitCode,
      isRunning: Effect.map(Deferred.isDone(exit), (done) => !done),
      kill: (killOptions) => terminate(child, exit, killOptions ?? {}),
      stdin: Sink.drain,
      stdout,
      stderr,
      all: Stream.merge(stdout, stderr),
      getInputFd: () => Sink.drain,
      getOutputFd: () => Stream.empty,
      unref: Effect.sync(() => {
        if (referenced) {
          referenced = false
          SpawnHelper.setChildReferenced(child, false)
        }
        return Effect.sync(() => {
          if (!referenced) {
            referenced = true
            SpawnHelper.setChildReferenced(child, true)
          }
        })
      })
    })
  })

/** Polls (10 ms) until the leader has exited and its group is gone, for at most `millis`. */
const awaitGone = (child: SpawnHelper.HelperChild, exit: Deferred.Deferred<Exited>, millis: number) =>
  Effect.callback<void>((resume) => {
    const deadline = Date.now() + millis
    let timer: ReturnType<typeof setTimeout> | undefined
    const poll = () => {
      if (Date.now() >= deadline || !alive(child, Deferred.isDoneUnsafe(exit))) {
        resume(Effect.void)
        return
      }
      timer = setTimeout(poll, 10)
    }
    poll()
    return Effect.sync(() => clearTimeout(timer))
  })

/** Signals the group: the command's signal, then (after `forceKillAfter`) KILL; waits for it, bounded. */
const terminate = (
  child: SpawnHelper.HelperChild,
  exit: Deferred.Deferred<Exited>,
  options: ChildProcess.KillOptions
): Effect.Effect<void, PlatformError.PlatformError> =>
  Effect.gen(function* () {
    const signal = (name: NodeJS.Signals) =>
      Effect.sync(() => {
        try {
          process.kill(-(child.pid as number), name)
        } catch {}
      })
    yield* signal(options.killSignal ?? "SIGTERM")
    if (options.forceKillAfter === undefined) {
      yield* Deferred.await(exit)
      yield* awaitGone(child, exit, 1_000)
    } else {
      yield* awaitGone(child, exit, Duration.toMillis(Duration.fromInputUnsafe(options.forceKillAfter)))
      if (alive(child, Deferred.isDoneUnsafe(exit))) {
        yield* signal("SIGKILL")
        yield* awaitGone(child, exit, 1_000)
      }
    }
    yield* Deferred.await(exit)
  })

/** Starts through the helper what it can start; everything else through `inner`. */
export const make = (inner: Spawner): Spawner => {
  // Started now, not at the first spawn (as the watchdog is): its start is the last fork of this process.
  SpawnHelper.start()
  return ChildProcessSpawner.make((command) =>
    supported(command) && SpawnHelper.available() ? startByHelper(command) : inner.spawn(command)
  )
}

/**
 * The spawner in context, started through the helper and guarded by the watchdog (every group it starts is killed
 * if this process dies): what services and captures are started with.
 */
export const guarded: Effect.Effect<Spawner, never, ChildProcessSpawner.ChildProcessSpawner> = Effect.map(
  Effect.service(ChildProcessSpawner.ChildProcessSpawner),
  (inner) => Watchdog.spawner(make(inner))
)
