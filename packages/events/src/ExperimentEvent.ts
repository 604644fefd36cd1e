/**
 * Events about a whole experiment run: started, state changes, finished.
 */
import { Schema } from "effect"
import { family } from "./Event.ts"
import { StateChangeData } from "./StateChange.ts"

export const ExperimentStarted = family(
  "experiment.started",
  "experiment",
  Schema.Struct({
    name: Schema.String,
    configurationFile: Schema.optionalKey(Schema.String),
    outputDir: Schema.optionalKey(Schema.String),
    /** Free settings worth keeping in the report (concurrency, retries, environment…). */
    settings: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
  })
)

export const ExperimentStateChanged = family("experiment.state_changed", "experiment", StateChangeData)

export const ExperimentFinished = family(
  "experiment.finished",
  "experiment",
  Schema.Struct({
    status: Schema.Literals(["completed", "failed", "finished_early", "interrupted"]),
    reason: Schema.optionalKey(Schema.String),
    fastFailTriggered: Schema.optionalKey(Schema.Boolean)
  })
)

/** The run is exported as an OpenTelemetry trace (`--otlp URL`): its trace id, to find it in the tracing backend. */
export const ExperimentTraced = family(
  "experiment.traced",
  "experiment",
  Schema.Struct({ traceId: Schema.String, spanId: Schema.String })
)

export const ExperimentEvent = Schema.Union([
  ExperimentStarted,
  ExperimentStateChanged,
  ExperimentFinished,
  ExperimentTraced
])
export type ExperimentEvent = typeof ExperimentEvent.Type
