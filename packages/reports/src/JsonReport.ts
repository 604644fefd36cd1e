/**
 * `experiment_summary.json`: the ExperimentSummary as JSON, two-space indented, keys in schema order, so the same
 * log and the same `generated_at` always give the same bytes.
 */
import { Schema } from "effect"
import { concat } from "./internal/chunks.ts"
import { pieces } from "./internal/json.ts"
import { ExperimentSummary } from "./ExperimentSummary.ts"

export const fileName = "experiment_summary.json"

const encode = Schema.encodeSync(ExperimentSummary)

/** The document in pieces (one test, one service at a time): a run of any size is written without one string. */
export function* chunks(summary: ExperimentSummary): Generator<string> {
  yield* pieces(encode(summary))
  yield "\n"
}

export const render = (summary: ExperimentSummary): string => concat(chunks(summary))

/** Reads a summary written by `render` (or by the older tool, for the fields they share) back. */
export const decode = Schema.decodeUnknownEffect(Schema.fromJsonString(ExperimentSummary))
