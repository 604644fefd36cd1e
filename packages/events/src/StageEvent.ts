/**
 * Events about Docker stages brought up and down. entityId is the stage's name; `runId` ties an up to its down.
 */
import { Schema } from "effect"
import { family } from "./Event.ts"

export const StageUpStarted = family(
  "stage.up_started",
  "stage",
  Schema.Struct({ runId: Schema.String, nodes: Schema.Int, networks: Schema.Int })
)
export const StageNodeStarted = family(
  "stage.node_started",
  "stage",
  Schema.Struct({ node: Schema.String, container: Schema.String })
)
export const StageUp = family("stage.up", "stage", Schema.Struct({ runId: Schema.String }))
/** `up` failed or was interrupted; everything it created has been removed. */
export const StageUpFailed = family(
  "stage.up_failed",
  "stage",
  Schema.Struct({ runId: Schema.String, reason: Schema.Literals(["failed", "interrupted"]) })
)
export const StageDown = family("stage.down", "stage", Schema.Struct({ runId: Schema.String }))

export const StageEvent = Schema.Union([StageUpStarted, StageNodeStarted, StageUp, StageUpFailed, StageDown])
export type StageEvent = typeof StageEvent.Type
