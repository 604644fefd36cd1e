/**
 * Why a command did not succeed, named for what happened.
 */
import { Runtime, Schema } from "effect"
import { CommandResult } from "./CommandResult.ts"
import { ExitCode } from "@testbed/events"

/** The command itself is malformed (missing program, NUL in an argument, negative timeout…): nothing ran. */
export class CommandInvalid extends Schema.TaggedError<CommandInvalid>()("CommandInvalid", {
  commandId: Schema.String,
  field: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `command ${this.commandId}: invalid ${this.field}: ${this.reason}`
  }
}

export class CommandNotFound extends Schema.TaggedError<CommandNotFound>()("CommandNotFound", {
  commandId: Schema.String,
  program: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `command ${this.commandId}: program not found: ${this.program}`
  }
}

/** The process could not be started: bad cwd, permission denied, … */
export class CommandSpawnFailed extends Schema.TaggedError<CommandSpawnFailed>()("CommandSpawnFailed", {
  commandId: Schema.String,
  program: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `command ${this.commandId}: could not start ${this.program}: ${this.reason}`
  }
}

export class CommandTimedOut extends Schema.TaggedError<CommandTimedOut>()("CommandTimedOut", {
  commandId: Schema.String,
  timeoutMs: Schema.Finite,
  result: CommandResult
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return `command ${this.commandId}: timed out after ${this.timeoutMs} ms`
  }
}

/** It ran and ended with an exit code (or signal) not in `successExitCodes`. */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  commandId: Schema.String,
  result: CommandResult
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return `command ${this.commandId}: ${this.result.signal !== null ? `killed by ${this.result.signal}` : `exit code ${this.result.exitCode ?? "unknown"}`}`
  }
}

export type CommandError = CommandInvalid | CommandNotFound | CommandSpawnFailed | CommandTimedOut | CommandFailed
