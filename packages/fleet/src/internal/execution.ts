// How an agent turns a command message into a run of the CommandRunner and the run into a compatible response.
import { Command, type CommandResult, type CommandRunner } from "@testbed/commands"
import { Clock, Duration, Effect } from "effect"
import * as Protocol from "../Protocol.ts"

export interface Execution {
  readonly runner: CommandRunner.CommandRunner["Service"]
  readonly mode: Protocol.Mode
  readonly commandTimeout: Duration.Duration
  readonly maxOutputBytes: number
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

export const refusedResponse = (
  agentId: string,
  message: Protocol.CommandMessage,
  reason: string,
  nowMs: number
): Protocol.ResponseMessage => ({
  client_id: agentId,
  command: message.command,
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

/** Runs one command; never fails: every outcome becomes an encoded response. */
export const dispatchResult = (
  execution: Execution,
  agentId: string,
  message: Identified,
  startMs: number
): Effect.Effect<string> => {
  const limit = Duration.toMillis(execution.commandTimeout)
  const asked = message.timeout !== undefined && message.timeout > 0 ? message.timeout * 1000 : limit
  const options = {
    id: message.command_id,
    timeout: Duration.millis(Math.min(limit, asked)),
    maxOutputBytes: execution.maxOutputBytes
  }
  const command = execution.toCommand
    ? execution.toCommand(message.command, options)
    : Command.shell(message.command, options)
  return execution.runner.run(command).pipe(
    Effect.map((result) => fromResult(agentId, message, result, "succeeded")),
    Effect.catchTags({
      CommandFailed: (e) => Effect.succeed(fromResult(agentId, message, e.result, "failed")),
      CommandTimedOut: (e) => Effect.succeed(fromResult(agentId, message, e.result, "timed_out"))
    }),
    Effect.catch((e) =>
      Effect.map(
        Clock.currentTimeMillis,
        (endMs): Protocol.ResponseMessage => ({
          ...base(agentId, message, startMs, endMs),
          output: "",
          error: `Failed to execute command: ${e._tag}${"reason" in e ? `: ${e.reason}` : ""}`,
          exit_code: null,
          timed_out: false,
          status: "error"
        })
      )
    ),
    Effect.map((response) => Protocol.encodeResponse(execution.mode, response))
  )
}
