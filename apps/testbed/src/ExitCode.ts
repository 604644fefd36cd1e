/**
 * How a command asks for a process exit code other than 0/1 (e.g. `replay test` exits with its client's code)
 * without calling `process.exit` and skipping finalizers: fail with `ExitWith`. The runtime's teardown reads the
 * code from the error; `bin.ts` prints `message` (when there is one) once on stderr, and the runtime does not log
 * it again with a stack trace — a client that exited 1 is not a testbed error.
 */
import { Runtime, Schema } from "effect"

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

/**
 * An expected failure (a typed error: a bad file, a full disk) said in one line on stderr, with the exit code the
 * error carries (2 for files, 3 for infrastructure; default 1) — never a stack trace on stdout. Errors already
 * shown (the CLI's own usage errors) pass through untouched; defects (bugs) are not failures and keep their trace.
 */
export const expected = (error: unknown): unknown =>
  error instanceof ExitWith || !Runtime.getErrorReported(error)
    ? error
    : new ExitWith({
        code: Runtime.getErrorExitCode(error),
        message: `testbed: ${error instanceof Error ? error.message : String(error)}`
      })
