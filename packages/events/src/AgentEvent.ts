/**
 * Events about fleet agents, as the fleet operator and agents see them. entityId is the agent's client id.
 */
import { Schema } from "effect"
import { family } from "./Event.ts"

const Empty = Schema.Struct({})

export const AgentRegistered = family("agent.registered", "agent", Empty)
export const AgentAcknowledged = family("agent.acknowledged", "agent", Empty)
/** The agent stayed gone past the operator's grace period (or stopped): its pending steps end as lost. */
export const AgentLost = family("agent.lost", "agent", Empty)

/**
 * The broker reported the agent gone (its MQTT last will); the operator waits up to `graceMs` (while connected
 * itself) for it to come back before its steps end as lost. A broker restart makes every agent look gone.
 */
export const AgentDisconnected = family("agent.disconnected", "agent", Schema.Struct({ graceMs: Schema.Finite }))

/** A disconnected agent came back within the grace period: its waiting commands are sent again. */
export const AgentReconnected = family("agent.reconnected", "agent", Empty)

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

/**
 * A fleet peer ignored a message that would have changed what it believes (an answer, running or lost notice, an
 * ack) because it was unsigned or not signed with the shared secret; counted, sampled. entityId: the agent it named.
 */
export const AgentMessageRefused = family(
  "agent.message_refused",
  "agent",
  Schema.Struct({ kind: Schema.String, reason: Schema.String, refusedSoFar: Schema.Int })
)

export const AgentEvent = Schema.Union([
  AgentRegistered,
  AgentAcknowledged,
  AgentLost,
  AgentDisconnected,
  AgentReconnected,
  AgentCommandRefused,
  AgentRegistrationRefused,
  AgentMessageRefused
])
export type AgentEvent = typeof AgentEvent.Type
