/**
 * Events about fleet agents, as the fleet operator and agents see them. entityId is the agent's client id.
 */
import { Schema } from "effect"
import { family } from "./Event.ts"

const Empty = Schema.Struct({})

export const AgentRegistered = family("agent.registered", "agent", Empty)
export const AgentAcknowledged = family("agent.acknowledged", "agent", Empty)
/** The broker reported the agent gone (its MQTT last will): its pending steps end as lost. */
export const AgentLost = family("agent.lost", "agent", Empty)

/** The agent refused a command: not on its allowlist, unsigned, forged or stale. */
export const AgentCommandRefused = family(
  "agent.command_refused",
  "agent",
  Schema.Struct({ commandId: Schema.NullOr(Schema.String), reason: Schema.String })
)

/** The operator ignored a registration (unsigned or forged when a secret is set); counted, sampled. */
export const AgentRegistrationRefused = family(
  "agent.registration_refused",
  "agent",
  Schema.Struct({ reason: Schema.String, refusedSoFar: Schema.Int })
)

export const AgentEvent = Schema.Union([
  AgentRegistered,
  AgentAcknowledged,
  AgentLost,
  AgentCommandRefused,
  AgentRegistrationRefused
])
export type AgentEvent = typeof AgentEvent.Type
