/**
 * Events about the steps of a test. entityId is `<test>/step/<index>`.
 */
import { Schema } from "effect"
import { family } from "./Event.ts"
import { StateChangeData } from "./StateChange.ts"

export const StepStarted = family(
  "step.started",
  "step",
  Schema.Struct({
    test: Schema.String,
    index: Schema.Int,
    kind: Schema.String,
    description: Schema.optionalKey(Schema.String)
  })
)

export const StepFinished = family(
  "step.finished",
  "step",
  Schema.Struct({
    test: Schema.String,
    index: Schema.Int,
    kind: Schema.String,
    status: Schema.Literals(["passed", "failed", "timeout", "interrupted"]),
    durationMs: Schema.Finite,
    message: Schema.optionalKey(Schema.String)
  })
)

/** A step with a state machine of its own moved (fleet steps: sent, running, succeeded, failed, timed out, lost). */
export const StepStateChanged = family("step.state_changed", "step", StateChangeData)

export const StepEvent = Schema.Union([StepStarted, StepFinished, StepStateChanged])
export type StepEvent = typeof StepEvent.Type
