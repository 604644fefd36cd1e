// How an agent turns a command message into a run of the CommandRunner and the run into a compatible, signed
// response. Every outcome is an answer: a command that cannot even be started (too large for the kernel, a
// program missing, a spawn that throws) is answered with a typed failure, never left to hang the agent.
import { Command, type CommandResult, type CommandRunner, Watchdog } from "@testbed/commands"
import { Clock, Duration, Effect } from "effect"
import * as Protocol from "../Protocol.ts"
import * as Security from "../Security.ts"

export interface Execution {
  readonly runner: CommandRunner.CommandRunner["Service"]
  readonly mode: Protocol.Mode
  readonly signing: Security.Signing
  readonly commandTimeout: Duration.Duration
  readonly maxOutputBytes: number
  /** The environment commands run with (already stripped of secrets). */
  readonly env: Readonly<Record<string, string>>
  readonly toCommand?: (
    command: string,
    options: Omit<Command.Command, "program" | "args" | "shell">
  ) => Command.Command
}

type Identified = Protocol.CommandMessage & { readonly command_id: string }

const base = (agentId: string, message: Identified, startMs: number, endMs: number) => ({
  client_id: agentId,
  command: message.command,
  start_time: Protocol.epochSeconds(startMs),
  end_time: Protocol.epochSeconds(endMs),
  command_id: message.command_id,
  duration: (endMs - startMs) / 1000
})

const fromResult = (
  agentId: string,
  message: Identified,
  result: CommandResult.CommandResult,
  status: Protocol.ResponseStatus
): Protocol.ResponseMessage => {
  const startMs = Date.parse(result.startedAt)
  const endMs = Date.parse(result.endedAt)
  return {
    ...base(agentId, message, Number.isNaN(startMs) ? 0 : startMs, Number.isNaN(endMs) ? 0 : endMs),
    duration: result.durationMs / 1000,
    output: result.stdout,
    error: result.stderr === "" ? "None" : result.stderr,
    exit_code: result.exitCode,
    signal: result.signal,
    timed_out: result.timedOut,
    status
  }
}

/** The response in the agent's mode, signed when a secret is configured. */
export const encode = (execution: Pick<Execution, "mode" | "signing">, response: Protocol.ResponseMessage): string =>
  Protocol.encodeResponse(execution.mode, Security.signResponse(execution.signing, response))

/** A refusal echoes at most a capped prefix of what it refuses. */
export const refusedResponse = (
  agentId: string,
  message: Protocol.CommandMessage,
  reason: string,
  nowMs: number
): Protocol.ResponseMessage => ({
  client_id: agentId,
  command: Protocol.capEcho(message.command),
  start_time: Protocol.epochSeconds(nowMs),
  end_time: Protocol.epochSeconds(nowMs),
  output: "",
  error: `Refused: ${reason}`,
  exit_code: null,
  ...(message.command_id !== undefined ? { command_id: message.command_id } : {}),
  duration: 0,
  timed_out: false,
  status: "refused",
  refusal: reason
})

/**
 * Could not start: `error` begins "Failed to execute command" as the original's did (old readers count that as a
 * failure), `failure` names what happened as a tag.
 */
export const failedToStart = (
  agentId: string,
  message: Identified,
  failure: string,
  reason: string,
  startMs: number,
  endMs: number
): Protocol.ResponseMessage => ({
  ...base(agentId, message, startMs, endMs),
  command: Protocol.capEcho(message.command),
  output: "",
  error: `Failed to execute command: ${reason}`,
  exit_code: null,
  timed_out: false,
  status: "error",
  failure
})

export const interruptedResponse = (
  agentId: string,
  message: Identified,
  startMs: number,
  endMs: number
): Protocol.ResponseMessage => ({
  ...base(agentId, message, startMs, endMs),
  output: "",
  error: "Interrupted: the agent is stopping",
  exit_code: null,
  timed_out: false,
  status: "interrupted"
})

const commandOf = (execution: Execution, message: Identified): Command.Command => {
  const limit = Duration.toMillis(execution.commandTimeout)
  const asked = message.timeout !== undefined && message.timeout > 0 ? message.timeout * 1000 : limit
  const options = {
    id: message.command_id,
    timeout: Duration.millis(Math.min(limit, asked)),
    maxOutputBytes: execution.maxOutputBytes,
    env: execution.env,
    envMode: "replace" as const
  }
  if (execution.toCommand) return execution.toCommand(message.command, options)
  // On this machine the command's shell records its process group for the Watchdog before running anything: an
  // agent SIGKILLed right after the spawn still takes the command with it. Elsewhere (a container) that means nothing.
  if (execution.runner.name !== "local") return Command.shell(message.command, options)
  const { program, args } = Watchdog.announced(message.command)
  return Command.make(program, args, options)
}

/**
 * Runs one command; never fails: every outcome becomes an encoded response. Untraced: it runs inside the caller's
 * `Agent.runCommand` span, and a span of its own (a stack capture and a span object per command) cost more than a
 * fast command's whole handling on the agent (bench/fleet.md).
 */
export const dispatchResult = Effect.fnUntraced(function* (
  execution: Execution,
  agentId: string,
  message: Identified,
  startMs: number
) {
  const couldNotStart = (failure: string, reason: string) =>
    Effect.map(Clock.currentTimeMillis, (endMs) => failedToStart(agentId, message, failure, reason, startMs, endMs))
  const response = yield* execution.runner.run(commandOf(execution, message)).pipe(
    Effect.map((result) => fromResult(agentId, message, result, "succeeded")),
    Effect.catchTags({
      CommandFailed: (e) => Effect.succeed(fromResult(agentId, message, e.result, "failed")),
      CommandTimedOut: (e) => Effect.succeed(fromResult(agentId, message, e.result, "timed_out")),
      CommandNotFound: (e) => couldNotStart(e._tag, `${e.program}: not found`),
      CommandSpawnFailed: (e) => couldNotStart(e._tag, e.reason),
      CommandInvalid: (e) => couldNotStart(e._tag, `${e.field}: ${e.reason}`)
    }),
    // A runner's bug must not leave the operator waiting: answered as such, never silently dropped.
    Effect.catchDefect((defect) => couldNotStart("RunnerDefect", Protocol.capEcho(String(defect), 512)))
  )
  return encode(execution, response)
})
