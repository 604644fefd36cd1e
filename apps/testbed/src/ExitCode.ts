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
