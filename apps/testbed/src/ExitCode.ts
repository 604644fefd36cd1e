/**
 * How a command asks for a process exit code other than 0/1 (e.g. `replay test` exits with its client's code)
 * without calling `process.exit` and skipping finalizers: fail with `ExitWith`, and the runtime's
 * teardown reads the code from the error.
 */
import { Schema } from "effect"

export class ExitWith extends Schema.TaggedError<ExitWith>()("ExitWith", {
  code: Schema.Int,
  message: Schema.optionalKey(Schema.String)
}) {
  override get ["~effect/Runtime/errorExitCode"](): number {
    return this.code
  }
}
