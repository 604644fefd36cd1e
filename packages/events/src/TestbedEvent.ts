/**
 * Every event testbed knows, as one union discriminated by `type`: match on it exhaustively.
 * Packages with events of their own (fleet agents, stages, replay) add families here, not elsewhere,
 * so the event log and reports have a single vocabulary.
 */
import { Schema } from "effect"
import { AgentEvent } from "./AgentEvent.ts"
import { AssertionEvent } from "./AssertionEvent.ts"
import { CommandEvent } from "./CommandEvent.ts"
import { EnvironmentEvent } from "./EnvironmentEvent.ts"
import { ExperimentEvent } from "./ExperimentEvent.ts"
import { PluginEvent } from "./PluginEvent.ts"
import { ServiceEvent } from "./ServiceEvent.ts"
import { StageEvent } from "./StageEvent.ts"
import { StepEvent } from "./StepEvent.ts"
import { TestEvent } from "./TestEvent.ts"

export const TestbedEvent = Schema.Union([
  ...ExperimentEvent.members,
  ...TestEvent.members,
  ...ServiceEvent.members,
  ...EnvironmentEvent.members,
  ...PluginEvent.members,
  ...CommandEvent.members,
  ...StepEvent.members,
  ...AssertionEvent.members,
  ...AgentEvent.members,
  ...StageEvent.members
])
export type TestbedEvent = typeof TestbedEvent.Type
export type TestbedEventType = TestbedEvent["type"]
/** The event of one type, e.g. `EventOf<"test.finished">`. */
export type EventOf<T extends TestbedEventType> = Extract<TestbedEvent, { readonly type: T }>
