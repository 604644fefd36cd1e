/**
 * The payload of every `<entity>.state_changed` event: one move of a state machine.
 */
import { Schema } from "effect"

export const Metadata = Schema.Record(Schema.String, Schema.Unknown)
export type Metadata = typeof Metadata.Type

export const StateChangeData = Schema.Struct({
  machine: Schema.String,
  from: Schema.String,
  to: Schema.String,
  trigger: Schema.String,
  metadata: Metadata
})
export type StateChangeData = typeof StateChangeData.Type
