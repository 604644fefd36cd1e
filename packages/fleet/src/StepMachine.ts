/**
 * The life of one pipeline step on one agent, as the operator sees it. `running` needs an agent that
 * announces starts (testbed's); an old agent goes from `sent` straight to its answer.
 */
import { StateMachine } from "@testbed/events"

export const FleetStep = StateMachine.define({
  name: "fleet-step",
  entityType: "step",
  states: ["pending", "sent", "running", "succeeded", "failed", "refused", "timed_out", "agent_lost", "skipped"],
  initial: "pending",
  transitions: {
    pending: ["sent", "skipped", "agent_lost"],
    sent: ["running", "succeeded", "failed", "refused", "timed_out", "agent_lost"],
    running: ["succeeded", "failed", "timed_out", "agent_lost"]
  },
  final: ["succeeded", "failed", "refused", "timed_out", "agent_lost", "skipped"]
})

export type StepState = (typeof FleetStep.states)[number]

export type StepOutcome = Exclude<StepState, "pending" | "sent" | "running">
