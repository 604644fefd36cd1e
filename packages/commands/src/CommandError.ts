/**
 * Why a command did not succeed, named for what happened.
 */
import { Schema } from "effect"
import { CommandResult } from "./CommandResult.ts"

/** The command itself is malformed (missing program, NUL in an argument, negative timeout…): nothing ran. */
export class CommandInvalid extends Schema.TaggedError<CommandInvalid>()("CommandInvalid", {
  commandId: Schema.String,
  field: Schema.String,
  reason: Schema.String
}) {}

export class CommandNotFound extends Schema.TaggedError<CommandNotFound>()("CommandNotFound", {
  commandId: Schema.String,
  program: Schema.String
}) {}

/** The process could not be started: bad cwd, permission denied, … */
export class CommandSpawnFailed extends Schema.TaggedError<CommandSpawnFailed>()("CommandSpawnFailed", {
  commandId: Schema.String,
  program: Schema.String,
  reason: Schema.String
}) {}

export class CommandTimedOut extends Schema.TaggedError<CommandTimedOut>()("CommandTimedOut", {
  commandId: Schema.String,
  timeoutMs: Schema.Finite,
  result: CommandResult
}) {}

/** It ran and ended with an exit code (or signal) not in `successExitCodes`. */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  commandId: Schema.String,
  result: CommandResult
}) {}

export type CommandError = CommandInvalid | CommandNotFound | CommandSpawnFailed | CommandTimedOut | CommandFailed
