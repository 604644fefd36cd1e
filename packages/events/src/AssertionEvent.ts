/**
 * Events about assertions checked at the end of a test. entityId is `<test>/assertion/<index>`.
 */
import { Schema } from "effect"
import { family } from "./Event.ts"

export const AssertionChecked = family(
  "assertion.checked",
  "assertion",
  Schema.Struct({
    test: Schema.String,
    index: Schema.Int,
    kind: Schema.String,
    passed: Schema.Boolean,
    message: Schema.optionalKey(Schema.String)
  })
)

export const AssertionEvent = Schema.Union([AssertionChecked])
export type AssertionEvent = typeof AssertionEvent.Type
