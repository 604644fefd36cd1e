/**
 * `experiment_summary.json`: the RunSummary as JSON, two-space indented, keys in schema order, so the same
 * log and the same `generated_at` always give the same bytes.
 */
import { Schema } from "effect"
import { RunSummary } from "./RunSummary.ts"

export const fileName = "experiment_summary.json"

const encode = Schema.encodeSync(RunSummary)

export const render = (summary: RunSummary): string => `${JSON.stringify(encode(summary), null, 2)}\n`

/** Reads a summary written by `render` (or by the older tool, for the fields they share) back. */
export const decode = Schema.decodeUnknownEffect(Schema.fromJsonString(RunSummary))
