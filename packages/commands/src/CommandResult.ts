/**
 * What running a command produced: exit status, captured output (bounded), timing and attempts.
 */
import { Schema } from "effect"

export const CommandResult = Schema.Struct({
  commandId: Schema.String,
  exitCode: Schema.NullOr(Schema.Int),
  /** Signal name (e.g. "SIGTERM") when the process was ended by a signal. */
  signal: Schema.NullOr(Schema.String),
  stdout: Schema.String,
  stderr: Schema.String,
  startedAt: Schema.String,
  endedAt: Schema.String,
  durationMs: Schema.Finite,
  attempts: Schema.Int,
  timedOut: Schema.Boolean,
  /** True when output beyond `maxOutputBytes` was dropped from `stdout`/`stderr` (never from a stream). */
  truncated: Schema.Boolean
})
export type CommandResult = typeof CommandResult.Type

/** One piece of a running command's output, or its end. */
export type OutputChunk =
  | { readonly _tag: "Stdout"; readonly bytes: Uint8Array }
  | { readonly _tag: "Stderr"; readonly bytes: Uint8Array }
  | { readonly _tag: "Exit"; readonly result: CommandResult }
