/**
 * How the `testbed` process ends. Every expected error carries its exit code (`ExitCode` of @testbed/events: 2 for
 * usage and file problems, 3 for infrastructure, 75 for a busy stage…); a failed command is said in one line on
 * stderr and exits with that code, never with a stack trace — `--debug` adds the whole cause. A defect (a bug) keeps
 * its trace. A command that wants another code without failing (`replay test` exits with its client's code, `run`
 * with 1 when a test failed) fails with `ExitWith`, so finalizers still run.
 */
// The one module of @testbed/events the CLI needs before a command runs (its index loads every event family).
import * as ExitCode from "@testbed/events/ExitCode"
import { Cause, Console, Effect, Runtime, Schema } from "effect"
import { CliError, Flag, GlobalFlag } from "effect/cli"

export class ExitWith extends Schema.TaggedError<ExitWith>()("ExitWith", {
  code: Schema.Int,
  /** Printed on stderr before exiting; leave it out when the command already said why. */
  message: Schema.optionalKey(Schema.String)
}) {
  override get [Runtime.errorExitCode](): number {
    return this.code
  }
  override get [Runtime.errorReported](): boolean {
    return false
  }
}

/** `--debug`: declared for every command (so help lists it); `bin.ts` reads it from argv to shape the ending. */
export const Debug = GlobalFlag.Setting("debug")({
  flag: Flag.Boolean("debug").pipe(
    Flag.withDescription("On failure, print the whole cause with stack traces"),
    Flag.withDefault(false)
  )
})

/** `--debug` anywhere before `--` (after it, the words are a command's, not testbed's). */
export const debugRequested = (argv: ReadonlyArray<string>): boolean => {
  const end = argv.indexOf("--")
  return (end === -1 ? argv : argv.slice(0, end)).includes("--debug")
}

/** The error a failure is about: the first expected failure, else the first defect. */
const firstError = (cause: Cause.Cause<unknown>): { readonly error: unknown; readonly defect: boolean } | undefined => {
  const failure = cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) return { error: failure.error, defect: false }
  const defect = cause.reasons.find(Cause.isDieReason)
  return defect === undefined ? undefined : { error: defect.defect, defect: true }
}

/** The one line a user reads: the error's own message, else its tag. */
const describe = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  if (message !== "") return message
  const tag = (error as { readonly _tag?: unknown } | null)?._tag
  return typeof tag === "string" ? tag : "failed"
}

export interface Ending {
  readonly code: number
  /** What to print on stderr, in order (nothing when the CLI or the command already said it). */
  readonly lines: ReadonlyArray<string>
}

/**
 * The exit code and the stderr lines of a failed program. The CLI's own usage errors (already shown with the
 * help) exit 2; `ExitWith` says its message; any other expected error says its message in one line; a defect
 * prints its trace. `debug` adds the whole cause (with stacks) to an expected error.
 */
export const ending = (cause: Cause.Cause<unknown>, debug: boolean): Ending => {
  const first = firstError(cause)
  const trace = debug ? [Cause.pretty(cause)] : []
  if (first === undefined) return { code: ExitCode.fromCause(cause), lines: [] }
  const { error, defect } = first
  if (defect) return { code: ExitCode.testFailed, lines: [Cause.pretty(cause)] }
  if (error instanceof ExitWith) {
    return { code: error.code, lines: [...(error.message ? [error.message] : []), ...trace] }
  }
  if (CliError.isCliError(error)) {
    // Rendered with the help already; a parse error is a usage error, a plain `--help` is not an error.
    const failed = error._tag !== "ShowHelp" || error.errors.length > 0
    return { code: failed ? ExitCode.usage : ExitCode.passed, lines: trace }
  }
  return { code: ExitCode.fromCause(cause), lines: [`testbed: ${describe(error)}`, ...trace] }
}

/**
 * Ends a failed program: prints its lines and fails with `ExitWith` (which the runtime neither logs nor prints).
 * Interruption passes through untouched: the runtime exits 130.
 */
export const exitWith =
  (debug: boolean) =>
  (cause: Cause.Cause<unknown>): Effect.Effect<never, unknown> => {
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
    const { code, lines } = ending(cause, debug)
    return Effect.andThen(
      Effect.forEach(lines, (line) => Console.error(line), { discard: true }),
      Effect.fail(new ExitWith({ code }))
    )
  }
