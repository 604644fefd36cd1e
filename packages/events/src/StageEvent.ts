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

/** Where an impairment applies: `NODE:IFACE` (a link end or a network attachment) of one instance of the stage. */
const where = { target: Schema.String, instance: Schema.optionalKey(Schema.String) }

/** An impairment set on a link end (it replaces the one before, whole); numbers as applied. */
export const StageImpaired = family(
  "stage.impaired",
  "stage",
  Schema.Struct({
    ...where,
    /** In tc's words: `rate 2mbit, loss 5%`. */
    description: Schema.String,
    rateBits: Schema.optionalKey(Schema.Finite),
    lossPercent: Schema.optionalKey(Schema.Finite),
    delayMs: Schema.optionalKey(Schema.Finite),
    jitterMs: Schema.optionalKey(Schema.Finite),
    reorderPercent: Schema.optionalKey(Schema.Finite),
    duplicatePercent: Schema.optionalKey(Schema.Finite),
    corruptPercent: Schema.optionalKey(Schema.Finite),
    down: Schema.optionalKey(Schema.Boolean)
  })
)

/** A link end back to no impairment. */
export const StageImpairmentCleared = family("stage.impairment_cleared", "stage", Schema.Struct(where))

/** A link taken down or brought back up (a flap's every step). */
export const StageLinkChanged = family("stage.link_changed", "stage", Schema.Struct({ ...where, up: Schema.Boolean }))

/** What `--verify` measured between the two ends of an impaired link, beside the setting. */
export const StageImpairmentVerified = family(
  "stage.impairment_verified",
  "stage",
  Schema.Struct({
    ...where,
    peer: Schema.String,
    measure: Schema.Literals(["rate", "loss", "rtt"]),
    unit: Schema.Literals(["bit/s", "%", "ms"]),
    setting: Schema.Finite,
    achieved: Schema.Finite,
    tolerance: Schema.Finite,
    withinTolerance: Schema.Boolean,
    samples: Schema.Int
  })
)

/** The topology of a stage (nodes, networks, links, addresses, impairments), drawn for reports. */
export const StageGraph = family(
  "stage.graph",
  "stage",
  Schema.Struct({
    instance: Schema.optionalKey(Schema.String),
    mermaid: Schema.String,
    dot: Schema.String,
    /** A self-contained SVG picture (no script, no external reference). */
    svg: Schema.String
  })
)

export const StageEvent = Schema.Union([
  StageUpStarted,
  StageNodeStarted,
  StageUp,
  StageUpFailed,
  StageDown,
  StageImpaired,
  StageImpairmentCleared,
  StageLinkChanged,
  StageImpairmentVerified,
  StageGraph
])
export type StageEvent = typeof StageEvent.Type
