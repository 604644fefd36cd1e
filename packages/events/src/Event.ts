/**
 * The event envelope every part of testbed emits: `{id, type, entityType, entityId, timestamp, data}`.
 * `type` is `<entity>.<name>`; `id` is unique per emission, so an event that really happened twice is two events.
 */
import { Clock, Effect, Schema } from "effect"
import * as Ids from "./Ids.ts"

/** The kinds of entity an event can be about. */
export const EntityType = Schema.Literals([
  "experiment",
  "test",
  "service",
  "environment",
  "plugin",
  "command",
  "step",
  "assertion",
  "agent",
  "stage",
  "replay"
])
export type EntityType = typeof EntityType.Type

/** The envelope with an opaque payload: what any JSONL event log line decodes to. */
export const Event = Schema.Struct({
  id: Schema.String,
  type: Schema.String,
  entityType: Schema.String,
  entityId: Schema.String,
  timestamp: Schema.String,
  data: Schema.Unknown
})
export type Event = typeof Event.Type

/** Builds the schema of one event type: literal `type` and `entityType`, typed `data`. */
export const family = <const T extends `${EntityType}.${string}`, const E extends EntityType, D extends Schema.Top>(
  type: T,
  entityType: E,
  data: D
) =>
  Schema.Struct({
    id: Schema.String,
    type: Schema.Literal(type),
    entityType: Schema.Literal(entityType),
    entityId: Schema.String,
    timestamp: Schema.String,
    data
  })

/**
 * A fresh event id from the `Ids` generator: time-ordered (millis in base 36), then the generator's tag and
 * counter, so ids never collide within a run and sort by emission inside one process.
 */
export const nextId = (ids: Ids.Generator, millis: number): string => ids.unique(millis.toString(36).padStart(9, "0"))

/**
 * Stamps a payload with a fresh id from `Ids` and the current time from `Clock` (so `Ids.layerTest` and TestClock
 * control both in tests).
 */
export const make = <const T extends string, const E extends string, D>(input: {
  readonly type: T
  readonly entityType: E
  readonly entityId: string
  readonly data: D
}): Effect.Effect<{
  readonly id: string
  readonly type: T
  readonly entityType: E
  readonly entityId: string
  readonly timestamp: string
  readonly data: D
}> =>
  // Read straight from the fiber: this runs for every event published.
  Effect.withFiber((fiber) => {
    const millis = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    return Effect.succeed({
      id: nextId(fiber.getRef(Ids.Ids), millis),
      type: input.type,
      entityType: input.entityType,
      entityId: input.entityId,
      timestamp: new Date(millis).toISOString(),
      data: input.data
    })
  })
