/**
 * A command as a value: what to run, where, with what environment, for how long, how often to retry,
 * and whether its failure matters. No shell is involved unless `shell` is given explicitly.
 *
 * Encoded form (YAML/JSON): durations are strings such as "5 seconds" or "250 millis".
 */
import { Schema } from "effect"

export const Retries = Schema.Struct({
  /** Extra attempts after the first one fails. */
  times: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  /** Delay before the first retry, doubled (times `factor`) after each. Default 100 millis. */
  backoff: Schema.optionalKey(Schema.DurationFromString),
  factor: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(1)))
})
export type Retries = typeof Retries.Type

export const Command = Schema.Struct({
  /** Stable id used in events; generated when absent. */
  id: Schema.optionalKey(Schema.String),
  /** The program to execute, looked up in PATH when it has no slash. Exactly one of `program` / `shell`. */
  program: Schema.optionalKey(Schema.String),
  args: Schema.optionalKey(Schema.Array(Schema.String)),
  /** A script for `sh -c`: only when a shell is really wanted. */
  shell: Schema.optionalKey(Schema.String),
  cwd: Schema.optionalKey(Schema.String),
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  /** `extend` (default) adds `env` to the parent's environment; `replace` passes only `env`. */
  envMode: Schema.optionalKey(Schema.Literals(["extend", "replace"])),
  stdin: Schema.optionalKey(Schema.String),
  timeout: Schema.optionalKey(Schema.DurationFromString),
  /** Time between TERM and KILL when a timeout or interruption ends the process group. Default 2 seconds. */
  killGracePeriod: Schema.optionalKey(Schema.DurationFromString),
  retries: Schema.optionalKey(Retries),
  /** In a sequence, a failing critical command stops the rest. Default false. */
  critical: Schema.optionalKey(Schema.Boolean),
  successExitCodes: Schema.optionalKey(Schema.Array(Schema.Int)),
  description: Schema.optionalKey(Schema.String),
  tags: Schema.optionalKey(Schema.Array(Schema.String)),
  /** Bytes of stdout and of stderr kept in the result; the rest is counted, streamed, not kept. Default 16 MiB. */
  maxOutputBytes: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))
})
export type Command = typeof Command.Type
export type CommandEncoded = typeof Command.Encoded

/** Builds a program command (no shell): `Command.make("ls", ["-l"], { cwd: "/tmp" })`. */
export const make = (
  program: string,
  args: ReadonlyArray<string> = [],
  options: Omit<Command, "program" | "args" | "shell"> = {}
): Command => ({
  ...options,
  program,
  args
})

/** Builds a shell command, run by `sh -c`. */
export const shell = (script: string, options: Omit<Command, "program" | "args" | "shell"> = {}): Command => ({
  ...options,
  shell: script
})
