/**
 * A command as a value: what to run, where, with what environment, for how long, how often to retry,
 * and whether its failure matters. No shell is involved unless `shell` is given explicitly.
 *
 * Encoded form (YAML/JSON): durations are strings such as "5 seconds" or "250 millis".
 */
import { Ids } from "@testbed/events"
import { Duration, Effect, Schema, SchemaIssue } from "effect"
import { CommandInvalid } from "./CommandError.ts"

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

/** The argv a command runs as: a shell command is `sh -c <script>`, never anything implicit. */
export const argv = (command: Command): { readonly program: string; readonly args: ReadonlyArray<string> } =>
  command.shell !== undefined
    ? { program: "sh", args: ["-c", command.shell] }
    : { program: command.program ?? "", args: command.args ?? [] }

/** The id a command is known by in events and results: its own `id`, or a fresh one (`Ids`) named after its program. */
export const idOf = (command: Command): Effect.Effect<string> => {
  if (command.id !== undefined) return Effect.succeed(command.id)
  const name = command.shell !== undefined ? "sh" : (command.program ?? "command").split("/").pop() || "command"
  return Ids.unique(name)
}

/** The command with its id filled in, so every attempt and event of one run shares the same id. */
export const withId = (command: Command): Effect.Effect<Command & { readonly id: string }> =>
  command.id !== undefined
    ? Effect.succeed(command as Command & { readonly id: string })
    : Effect.map(idOf(command), (id) => ({ ...command, id }))

const invalid = (commandId: string, field: string, reason: string) => new CommandInvalid({ commandId, field, reason })

const hasNul = (value: string) => value.includes("\0")

/**
 * Checks what the schema cannot see in a typed value (a NUL byte, a negative duration, a value smuggled past
 * the types) so a malformed command fails with `CommandInvalid` naming the field, before anything is spawned.
 */
export const validate = Effect.fn("Command.validate")(function* (
  command: Command
): Effect.fn.Return<Command & { readonly id: string }, CommandInvalid> {
  const withIdentity = yield* withId(command)
  const problem = findProblem(withIdentity)
  if (problem !== undefined) return yield* invalid(withIdentity.id, problem.field, problem.reason)
  return withIdentity
})

const findProblem = (command: Command): { readonly field: string; readonly reason: string } | undefined => {
  const has = (value: unknown) => value !== undefined
  if (has(command.program) && has(command.shell)) {
    return { field: "program", reason: "give either program (with args) or shell, not both" }
  }
  if (has(command.shell)) {
    if (typeof command.shell !== "string") return { field: "shell", reason: "must be a string" }
    if (has(command.args)) return { field: "args", reason: "a shell command takes no args: put them in the script" }
    if (hasNul(command.shell)) return { field: "shell", reason: "contains a NUL byte" }
  } else {
    if (typeof command.program !== "string" || command.program.length === 0) {
      return { field: "program", reason: "missing: give a program (or a shell script)" }
    }
    if (hasNul(command.program)) return { field: "program", reason: "contains a NUL byte" }
    const args: unknown = command.args ?? []
    if (!Array.isArray(args)) return { field: "args", reason: "must be an array of strings" }
    for (const [index, arg] of args.entries()) {
      if (typeof arg !== "string") return { field: `args[${index}]`, reason: "must be a string" }
      if (hasNul(arg)) return { field: `args[${index}]`, reason: "contains a NUL byte" }
    }
  }
  if (has(command.cwd) && (typeof command.cwd !== "string" || command.cwd.length === 0 || hasNul(command.cwd))) {
    return { field: "cwd", reason: "must be a non-empty path without NUL bytes" }
  }
  for (const [key, value] of Object.entries(command.env ?? {})) {
    if (key.length === 0 || key.includes("=") || hasNul(key)) {
      return { field: `env.${key}`, reason: "a variable name must be non-empty, without '=' or NUL" }
    }
    // The value itself is never echoed: env values may be secrets.
    if (typeof value !== "string") return { field: `env.${key}`, reason: `must be a string, got ${typeof value}` }
    if (hasNul(value)) return { field: `env.${key}`, reason: "contains a NUL byte" }
  }
  if (has(command.stdin) && typeof command.stdin !== "string") return { field: "stdin", reason: "must be a string" }
  for (const field of ["timeout", "killGracePeriod"] as const) {
    const value = command[field]
    if (value === undefined) continue
    if (!Duration.isDuration(value)) return { field, reason: "must be a Duration" }
    if (Duration.isNegative(value)) return { field, reason: `must not be negative, got ${Duration.format(value)}` }
  }
  if (command.retries !== undefined) {
    const { times, backoff, factor } = command.retries
    if (!Number.isInteger(times) || times < 0) return { field: "retries.times", reason: "must be an integer >= 0" }
    if (backoff !== undefined && (!Duration.isDuration(backoff) || Duration.isNegative(backoff))) {
      return { field: "retries.backoff", reason: "must be a non-negative Duration" }
    }
    if (factor !== undefined && !(Number.isFinite(factor) && factor >= 1)) {
      return { field: "retries.factor", reason: "must be a finite number >= 1" }
    }
  }
  for (const [index, code] of (command.successExitCodes ?? []).entries()) {
    if (!Number.isInteger(code)) return { field: `successExitCodes[${index}]`, reason: "must be an integer" }
  }
  const max = command.maxOutputBytes
  if (max !== undefined && !(Number.isInteger(max) && max >= 0)) {
    return { field: "maxOutputBytes", reason: "must be an integer >= 0" }
  }
  return undefined
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * Decodes a command from outside input (YAML, JSON, a wire message). Schema errors become `CommandInvalid`
 * whose `field` is the path of the first problem (`env.TOKEN`, `args[2]`, `timeout`).
 */
export const decode = (input: unknown): Effect.Effect<Command & { readonly id: string }, CommandInvalid> => {
  const id =
    typeof input === "object" && input !== null && typeof (input as { id?: unknown }).id === "string"
      ? (input as { id: string }).id
      : "command"
  return Schema.decodeUnknownEffect(Command)(input).pipe(
    Effect.mapError((error) => {
      const first = formatIssues(error.issue).issues[0]
      const field = (first?.path ?? [])
        .map((key, index) => (typeof key === "number" ? `[${key}]` : index === 0 ? String(key) : `.${String(key)}`))
        .join("")
      return invalid(id, field === "" ? "command" : field, first?.message ?? error.message)
    }),
    Effect.flatMap(validate)
  )
}

/** Default time between TERM and KILL. */
export const defaultKillGracePeriod: Duration.Duration = Duration.seconds(2)
/** Default bytes of stdout and of stderr kept in a result. */
export const defaultMaxOutputBytes = 16 * 1024 * 1024
