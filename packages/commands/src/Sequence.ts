/**
 * Runs commands one after another. A failing non-critical command is recorded and the rest continue; a
 * failing critical one stops the sequence. The outcome says which ran, which failed and why.
 */
import { Effect, Schema } from "effect"
import * as Command from "./Command.ts"
import type { CommandError } from "./CommandError.ts"
import { CommandResult } from "./CommandResult.ts"
import * as CommandRunner from "./CommandRunner.ts"

export const StepStatus = Schema.Literals(["succeeded", "failed", "skipped"])
export type StepStatus = typeof StepStatus.Type

export const StepOutcome = Schema.Struct({
  commandId: Schema.String,
  description: Schema.optionalKey(Schema.String),
  critical: Schema.Boolean,
  status: StepStatus,
  /** The run's result; absent when the command never ran (skipped, not found, invalid). */
  result: Schema.optionalKey(CommandResult),
  /** Tag of the error (`CommandFailed`, `CommandTimedOut`, …) when the step failed. */
  error: Schema.optionalKey(Schema.String),
  /** Why it failed or was skipped, in words. */
  reason: Schema.optionalKey(Schema.String)
})
export type StepOutcome = typeof StepOutcome.Type

export const SequenceOutcome = Schema.Struct({
  /** True when every command ran and succeeded. */
  ok: Schema.Boolean,
  steps: Schema.Array(StepOutcome),
  /** Id of the critical command whose failure stopped the sequence. */
  stoppedBy: Schema.optionalKey(Schema.String)
})
export type SequenceOutcome = typeof SequenceOutcome.Type

/** Ids of the steps with the given status. */
export const idsWith = (outcome: SequenceOutcome, status: StepStatus): ReadonlyArray<string> =>
  outcome.steps.filter((step) => step.status === status).map((step) => step.commandId)

const described = (command: Command.Command) =>
  command.description !== undefined ? { description: command.description } : {}

const failedStep = (command: Command.Command & { readonly id: string }, error: CommandError): StepOutcome => ({
  commandId: command.id,
  ...described(command),
  critical: command.critical === true,
  status: "failed",
  ...(error._tag === "CommandFailed" || error._tag === "CommandTimedOut" ? { result: error.result } : {}),
  error: error._tag,
  reason: CommandRunner.describeError(error)
})

/**
 * Runs the commands in order through the `CommandRunner` in context. Never fails: failures are in the
 * outcome. Interruption stops the running command (its process group) and the sequence.
 */
export const run = Effect.fn("Sequence.run")(function* (
  commands: Iterable<Command.Command>
): Effect.fn.Return<SequenceOutcome, never, CommandRunner.CommandRunner> {
  const runner = yield* CommandRunner.CommandRunner
  const steps: Array<StepOutcome> = []
  let stoppedBy: string | undefined
  for (const input of commands) {
    // Ids are fixed up front so skipped steps are reported under the id they would have run with.
    const command = yield* Command.withId(input)
    if (stoppedBy !== undefined) {
      steps.push({
        commandId: command.id,
        ...described(command),
        critical: command.critical === true,
        status: "skipped",
        reason: `critical command ${stoppedBy} failed`
      })
      continue
    }
    const step = yield* runner.run(command).pipe(
      Effect.match({
        onSuccess: (result): StepOutcome => ({
          commandId: command.id,
          ...described(command),
          critical: command.critical === true,
          status: "succeeded",
          result
        }),
        onFailure: (error) => failedStep(command, error)
      })
    )
    steps.push(step)
    if (step.status === "failed" && step.critical) stoppedBy = command.id
  }
  return {
    ok: steps.every((step) => step.status === "succeeded"),
    steps,
    ...(stoppedBy !== undefined ? { stoppedBy } : {})
  }
})
