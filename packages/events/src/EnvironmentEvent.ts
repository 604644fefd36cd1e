/**
 * Events about the environment a test's services run in (localhost, docker stage…).
 */
import { Schema } from "effect"
import { family } from "./Event.ts"
import { StateChangeData } from "./StateChange.ts"

export const EnvironmentStateChanged = family("environment.state_changed", "environment", StateChangeData)

export const EnvironmentReady = family(
  "environment.ready",
  "environment",
  Schema.Struct({
    kind: Schema.String,
    test: Schema.optionalKey(Schema.String),
    details: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
  })
)

export const EnvironmentEvent = Schema.Union([EnvironmentStateChanged, EnvironmentReady])
export type EnvironmentEvent = typeof EnvironmentEvent.Type
