/**
 * Runs a client test against a replayed script: starts the server, runs the command with the environment
 * the older sock_test.py gave it (NDS_TEST_HOST, NDS_TEST_PORT, NDS2_CHANNEL_DB_DIR: a fresh temp dir removed
 * afterwards) plus TESTBED_REPLAY_HOST/PORT, streams its output, and decides the exit code: the command's own,
 * or 1 when the replay failed (a divergence, a script not run to its end), 124 when the overall timeout hit.
 * A failed replay does not wait for the command: after a short grace it is stopped (SIGTERM, then SIGKILL).
 */
import { Command, type CommandError, CommandRunner } from "@testbed/commands"
import { Console, Duration, Effect, FileSystem, Stream } from "effect"
import type { Plan } from "./Plan.ts"
import * as ReplayServer from "./ReplayServer.ts"
import * as ScriptSource from "./ScriptSource.ts"

export interface TestOptions extends ReplayServer.ServeOptions {
  readonly program: string
  readonly args: ReadonlyArray<string>
  /** The whole run (server and command). Default 5 minutes. */
  readonly timeout?: Duration.Input | undefined
  /** How long open connections may take to finish after the command exits. Default 2 seconds. */
  readonly grace?: Duration.Input | undefined
  /**
   * Once the replay has failed, how long the command may take to end by itself before it gets SIGTERM (then
   * SIGKILL after `killGrace`): a failed replay does not wait for a client that lingers. Default 2 seconds.
   */
  readonly failureGrace?: Duration.Input | undefined
  /** Between SIGTERM and SIGKILL of the command's process group. Default 2 seconds. */
  readonly killGrace?: Duration.Input | undefined
}

export interface TestResult {
  readonly exitCode: number
  /** The command's own exit code (null when it was killed or could not start). */
  readonly commandExitCode: number | null
  readonly timedOut: boolean
  readonly outcome: ReplayServer.Outcome
}

export const timeoutExitCode = 124

const commandExitCode = (error: CommandError.CommandError): number | null => {
  switch (error._tag) {
    case "CommandFailed":
      return error.result.exitCode
    case "CommandTimedOut":
      return error.result.exitCode
    default:
      return null
  }
}

const describe = (error: CommandError.CommandError): string =>
  error._tag === "CommandNotFound"
    ? `command not found: ${error.program}`
    : error._tag === "CommandSpawnFailed"
      ? `cannot start ${error.program}: ${error.reason}`
      : error._tag === "CommandInvalid"
        ? `invalid command (${error.field}): ${error.reason}`
        : ""

/**
 * The environment a client test gets to find its replayed server: the older tool's `NDS_TEST_HOST`/`PORT` and
 * testbed's own names. (`run` adds `NDS2_CHANNEL_DB_DIR`, a fresh directory of its own.)
 */
export const clientEnv = (host: string, port: number): Readonly<Record<string, string>> => ({
  NDS_TEST_HOST: host,
  NDS_TEST_PORT: String(port),
  TESTBED_REPLAY_HOST: host,
  TESTBED_REPLAY_PORT: String(port)
})

/** Runs the command, its output streamed through; its exit code (127: not found; null: killed, or did not start). */
const runClient = Effect.fn("TestLauncher.runClient")(function* (
  runner: CommandRunner.CommandRunner["Service"],
  command: Command.Command
) {
  const stdout = process.stdout
  const stderr = process.stderr
  return yield* runner.stream(command).pipe(
    Stream.runFold(
      (): number | null => null,
      (code, chunk) => {
        if (chunk._tag === "Stdout") stdout.write(chunk.bytes)
        else if (chunk._tag === "Stderr") stderr.write(chunk.bytes)
        else return chunk.result.exitCode
        return code
      }
    ),
    Effect.catch((error: CommandError.CommandError) =>
      Effect.as(
        describe(error) === "" ? Effect.void : Console.error(describe(error)),
        error._tag === "CommandNotFound" ? 127 : commandExitCode(error)
      )
    )
  )
})

/** The client command, with the environment that leads it to the server and a fresh channel database dir. */
const clientCommand = (options: TestOptions, server: ReplayServer.RunningServer, channelDb: string) =>
  Command.make(options.program, options.args, {
    env: { ...clientEnv(server.host, server.port), NDS2_CHANNEL_DB_DIR: channelDb },
    envMode: "extend",
    // The runner keeps at most this much; everything is streamed through as it comes anyway.
    maxOutputBytes: 0,
    killGracePeriod: Duration.fromInputUnsafe(options.killGrace ?? Duration.seconds(2))
  })

export const run = Effect.fn("TestLauncher.run")(function* (plan: Plan, options: TestOptions) {
  const fs = yield* FileSystem.FileSystem
  const runner = yield* CommandRunner.CommandRunner
  const server = yield* ReplayServer.serve(plan, options)
  const channelDb = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-replay-" })
  const client = runClient(runner, clientCommand(options, server, channelDb))
  // Once the replay has failed its verdict is known: the command gets a short grace, then is interrupted (the
  // runner sends its process group SIGTERM, then SIGKILL) rather than awaited.
  const stopped = Effect.as(
    Effect.andThen(server.failed, Effect.sleep(options.failureGrace ?? Duration.seconds(2))),
    null
  )
  const finished = yield* Effect.raceFirst(client, stopped).pipe(
    Effect.timeoutOption(options.timeout ?? Duration.minutes(5))
  )
  const outcome = yield* server.finish(options.grace ?? Duration.seconds(2))
  const timedOut = finished._tag === "None"
  const code = timedOut ? null : finished.value
  const exitCode = timedOut ? timeoutExitCode : outcome.failures.length > 0 ? 1 : (code ?? 1)
  return { exitCode, commandExitCode: code, timedOut, outcome } satisfies TestResult
}, Effect.scoped)

/** `testbed replay test`: loads the script, runs the client against it, and reports the outcome. */
export const runFile = Effect.fn("TestLauncher.runFile")(function* (
  source: ScriptSource.ScriptSource,
  options: TestOptions
) {
  const loaded = yield* ScriptSource.load(source)
  const result = yield* run(loaded.plan, options)
  yield* report(result.outcome)
  if (result.timedOut) yield* Console.error("Replay test timed out")
  return result
})

/** The report printed after a run: each failure, then the summary line. */
export const report = ReplayServer.report
