/**
 * Events about structured commands run by any runner. entityId is the command's id.
 * Arguments are recorded as given; callers keep secrets out of args (env values are never recorded).
 */
import { Schema } from "effect"
import { family } from "./Event.ts"

export const CommandStarted = family(
  "command.started",
  "command",
  Schema.Struct({
    program: Schema.String,
    args: Schema.Array(Schema.String),
    description: Schema.optionalKey(Schema.String),
    runner: Schema.String,
    attempt: Schema.Int
  })
)

export const CommandCompleted = family(
  "command.completed",
  "command",
  Schema.Struct({
    exitCode: Schema.Int,
    durationMs: Schema.Finite,
    attempts: Schema.Int,
    truncated: Schema.Boolean
  })
)

export const CommandFailed = family(
  "command.failed",
  "command",
  Schema.Struct({
    reason: Schema.String,
    exitCode: Schema.NullOr(Schema.Int),
    signal: Schema.NullOr(Schema.String),
    durationMs: Schema.Finite,
    attempts: Schema.Int
  })
)

export const CommandTimedOut = family(
  "command.timed_out",
  "command",
  Schema.Struct({ timeoutMs: Schema.Finite, durationMs: Schema.Finite, attempts: Schema.Int })
)

export const CommandEvent = Schema.Union([CommandStarted, CommandCompleted, CommandFailed, CommandTimedOut])
export type CommandEvent = typeof CommandEvent.Type
