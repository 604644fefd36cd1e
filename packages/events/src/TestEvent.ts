/**
 * Events about one test case: declared, each attempt started and finished, artifacts it left.
 * A test's entityId is its name (unique within an experiment).
 */
import { Schema } from "effect"
import { family } from "./Event.ts"
import { StateChangeData } from "./StateChange.ts"

/**
 * Final status of one attempt or of a whole test. `flaky` is derived by reports, never emitted. Two come from
 * cluster runs (`testbed run --cluster`) and are not test failures: `runner_lost` (the runner running the attempt
 * stopped; the attempt is re-run elsewhere, an infrastructure retry) and `unschedulable` (no runner has the labels
 * the test needs: `missingLabels`).
 */
export const TestStatus = Schema.Literals([
  "passed",
  "failed",
  "skipped",
  "timeout",
  "interrupted",
  "unsupported",
  "runner_lost",
  "unschedulable"
])
export type TestStatus = typeof TestStatus.Type

/** A service taking part in a test, as declared (used for the implementations × tests matrix). */
export const TestParticipant = Schema.Struct({
  service: Schema.String,
  implementation: Schema.String,
  type: Schema.Literals(["iut", "tester"]),
  role: Schema.optionalKey(Schema.Literals(["server", "client"])),
  version: Schema.optionalKey(Schema.String)
})
export type TestParticipant = typeof TestParticipant.Type

export const TestRegistered = family(
  "test.registered",
  "test",
  Schema.Struct({
    name: Schema.String,
    description: Schema.optionalKey(Schema.String),
    participants: Schema.Array(TestParticipant),
    /** Where the test sits in an interop matrix: one row and one column label. */
    matrix: Schema.optionalKey(Schema.Struct({ row: Schema.String, column: Schema.String }))
  })
)

export const TestStarted = family("test.started", "test", Schema.Struct({ name: Schema.String, attempt: Schema.Int }))

export const TestStateChanged = family("test.state_changed", "test", StateChangeData)

export const TestFinished = family(
  "test.finished",
  "test",
  Schema.Struct({
    name: Schema.String,
    attempt: Schema.Int,
    status: TestStatus,
    durationMs: Schema.Finite,
    errorMessage: Schema.optionalKey(Schema.String),
    logsPath: Schema.optionalKey(Schema.String),
    fastFailTriggered: Schema.optionalKey(Schema.Boolean),
    /** True when another attempt follows this one. */
    willRetry: Schema.optionalKey(Schema.Boolean),
    /** `unschedulable`: the labels no live cluster runner has. */
    missingLabels: Schema.optionalKey(Schema.Array(Schema.String))
  })
)

export const ArtifactKind = Schema.Literals([
  "log",
  "capture",
  "keylog",
  "replay_script",
  "feedback",
  "report",
  /** What a tool wrapped around a service wrote: a syscall summary, a memcheck report. */
  "profile",
  "other"
])
export type ArtifactKind = typeof ArtifactKind.Type

export const TestArtifact = family(
  "test.artifact",
  "test",
  Schema.Struct({
    name: Schema.String,
    kind: ArtifactKind,
    path: Schema.String,
    service: Schema.optionalKey(Schema.String),
    description: Schema.optionalKey(Schema.String)
  })
)

export const TestEvent = Schema.Union([TestRegistered, TestStarted, TestStateChanged, TestFinished, TestArtifact])
export type TestEvent = typeof TestEvent.Type
