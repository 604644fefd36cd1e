/**
 * Every event testbed knows, as one union discriminated by `type`: match on it exhaustively.
 * Packages with events of their own (fleet agents, stages, replay) add families here, not elsewhere,
 * so the event log and reports have a single vocabulary.
 */
import { type Effect, Schema } from "effect"
import { AgentEvent } from "./AgentEvent.ts"
import { AssertionEvent } from "./AssertionEvent.ts"
import { CommandEvent } from "./CommandEvent.ts"
import { EnvironmentEvent } from "./EnvironmentEvent.ts"
import * as Event from "./Event.ts"
import { ExperimentEvent } from "./ExperimentEvent.ts"
import { PluginEvent } from "./PluginEvent.ts"
import { ResourceEvent } from "./ResourceEvent.ts"
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
  ...StageEvent.members,
  ...ResourceEvent.members
])
export type TestbedEvent = typeof TestbedEvent.Type
export type TestbedEventType = TestbedEvent["type"]
/** The event of one type, e.g. `EventOf<"test.finished">`. */
export type EventOf<T extends TestbedEventType> = Extract<TestbedEvent, { readonly type: T }>
/** The payload of one event type, e.g. `DataOf<"test.finished">`. */
export type DataOf<T extends TestbedEventType> = EventOf<T>["data"]
/** The entity an event type is about, e.g. `EntityTypeOf<"test.finished">` is `"test"`. */
export type EntityTypeOf<T extends TestbedEventType> = EventOf<T>["entityType"]
/** The event types that record one move of a state machine (`<entity>.state_changed`). */
export type StateChangedType = Extract<TestbedEventType, `${string}.state_changed`>
/** The entities whose state machines publish their moves. */
export type MachineEntityType = EntityTypeOf<StateChangedType>

// Read off the family schemas themselves, so a new family needs no second table to stay in step with.
const entityTypes: ReadonlyMap<string, string> = new Map(
  TestbedEvent.members.map((member) => [member.fields.type.literal, member.fields.entityType.literal])
)

/** The entity type of an event type, as its family declares it (`test.finished` → `test`). */
export const entityTypeOf = <T extends TestbedEventType>(type: T): EntityTypeOf<T> =>
  entityTypes.get(type) as EntityTypeOf<T>

/**
 * What a producer states about an event: its `type`, which selects the entity type and the shape of `data`, so an
 * unknown type or a payload of the wrong shape does not compile. `make` adds the id and the time.
 */
export interface Input<T extends TestbedEventType> {
  readonly type: T
  readonly entityId: string
  readonly data: DataOf<T>
}

/** Stamps a typed payload with a fresh id and the `Clock`'s time: an event of the union, ready to publish. */
export const make = <T extends TestbedEventType>(input: Input<T>): Effect.Effect<EventOf<T>> =>
  // The stamped envelope is exactly the family's shape: `type` and `entityType` are its literals, `data` its payload.
  Event.make({
    type: input.type,
    entityType: entityTypeOf(input.type),
    entityId: input.entityId,
    data: input.data
  }) as Effect.Effect<unknown> as Effect.Effect<EventOf<T>>
