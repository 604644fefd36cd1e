/**
 * A CommandRunner whose commands run inside a container (docker exec): the same structured commands, retries
 * and events as the local runner, so experiments run steps in stage nodes exactly as they run them locally.
 * `envMode: "replace"` is done with `env -i` inside the container; interruption and timeouts kill the process
 * when the engine runs on this machine.
 */
import { Command, CommandError, type CommandResult, CommandRunner, OutputCapture } from "@testbed/commands"
import type { EventBus } from "@testbed/events"
import { Clock, Effect, Layer, Queue, Stream } from "effect"
import { Docker } from "./Docker.ts"
import type { ExecSink } from "./internal/exec.ts"

type OutputChunk = CommandResult.OutputChunk

const argvIn = (command: CommandRunner.ValidCommand): Array<string> => {
  const { program, args } = Command.argv(command)
  const env = Object.entries(command.env ?? {}).map(([k, v]) => `${k}=${v}`)
  return command.envMode === "replace" ? ["env", "-i", ...env, program, ...args] : [program, ...args]
}

/** One attempt of a command in a container, reporting output to `onOutput` as it arrives. */
const attempt = Effect.fn("DockerExecRunner.attempt")(function* (
  docker: Docker["Service"],
  container: string,
  command: CommandRunner.ValidCommand,
  onOutput: ExecSink
): Effect.fn.Return<CommandResult.CommandResult, CommandError.CommandError> {
  const limit = command.maxOutputBytes ?? Command.defaultMaxOutputBytes
  const stdout = OutputCapture.make(limit)
  const stderr = OutputCapture.make(limit)
  const sink: ExecSink = {
    stdout: (bytes) => {
      stdout.push(bytes)
      onOutput.stdout(bytes)
    },
    stderr: (bytes) => {
      stderr.push(bytes)
      onOutput.stderr(bytes)
    }
  }
  const startedAt = yield* Clock.currentTimeMillis
  const program = Command.argv(command).program
  const exec = docker
    .exec(
      container,
      {
        cmd: argvIn(command),
        ...(command.envMode !== "replace" && command.env
          ? { env: Object.entries(command.env).map(([k, v]) => `${k}=${v}`) }
          : {}),
        ...(command.cwd ? { workingDir: command.cwd } : {}),
        ...(command.stdin !== undefined ? { stdin: command.stdin } : {})
      },
      sink
    )
    .pipe(
      Effect.mapError((e) => new CommandError.CommandSpawnFailed({ commandId: command.id, program, reason: e.message }))
    )
  const outcome = command.timeout === undefined ? Effect.asSome(exec) : Effect.timeoutOption(exec, command.timeout)
  const exitCode = yield* outcome
  const endedAt = yield* Clock.currentTimeMillis
  const result = CommandRunner.attemptResult(command, {
    exitCode: exitCode._tag === "Some" ? exitCode.value : null,
    signal: null,
    stdout,
    stderr,
    startedAt,
    endedAt,
    timedOut: exitCode._tag === "None"
  })
  // The engine reports a missing program as exit code 126/127 with the runtime's message as output.
  if (
    (result.exitCode === 126 || result.exitCode === 127) &&
    /executable file not found|no such file or directory/i.test(result.stdout + result.stderr)
  ) {
    return yield* new CommandError.CommandNotFound({ commandId: command.id, program })
  }
  return yield* CommandRunner.judge(command, result)
})

const ignoreOutput: ExecSink = { stdout: () => undefined, stderr: () => undefined }

/** The runner for one container (id or name), as the service value. */
export const make = Effect.fn("DockerExecRunner.make")(function* (
  container: string
): Effect.fn.Return<CommandRunner.CommandRunner["Service"], never, Docker | EventBus.EventBus> {
  const docker = yield* Docker
  return yield* CommandRunner.make({
    name: `docker:${container}`,
    run: (command) => attempt(docker, container, command, ignoreOutput),
    stream: (command) =>
      Stream.callback<OutputChunk, CommandError.CommandError>((queue) =>
        attempt(docker, container, command, {
          stdout: (bytes) => Queue.offerUnsafe(queue, { _tag: "Stdout", bytes: bytes.slice() }),
          stderr: (bytes) => Queue.offerUnsafe(queue, { _tag: "Stderr", bytes: bytes.slice() })
        }).pipe(
          Effect.matchEffect({
            onSuccess: (result) => Effect.andThen(Queue.offer(queue, { _tag: "Exit", result }), Queue.end(queue)),
            onFailure: (error) => Queue.fail(queue, error)
          }),
          Effect.forkScoped
        )
      )
  })
})

/** `CommandRunner` for a container of the engine in context: `DockerExecRunner.layer({ container: "lab-client1-…" })`. */
export const layer = (options: {
  readonly container: string
}): Layer.Layer<CommandRunner.CommandRunner, never, Docker | EventBus.EventBus> =>
  Layer.effect(CommandRunner.CommandRunner, make(options.container))
