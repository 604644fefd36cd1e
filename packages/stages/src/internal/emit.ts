// Events of the stage family (`stage.*`, entity `stage`, entityId the stage's name) on the bus in context.
import { EventBus, type StageEvent, type TestbedEvent } from "@testbed/events"
import { Effect } from "effect"

/** The stage family's event names without their `stage.` prefix: `up`, `impaired`, … */
export type StageEventName = StageEvent.StageEvent["type"] extends `stage.${infer Name}` ? Name : never

export const emit = <N extends StageEventName>(
  name: N,
  stage: string,
  data: TestbedEvent.DataOf<`stage.${N}` & TestbedEvent.TestbedEventType>
): Effect.Effect<void, never, EventBus.EventBus> =>
  EventBus.emit({ type: `stage.${name}` as `stage.${N}` & TestbedEvent.TestbedEventType, entityId: stage, data }).pipe(
    Effect.asVoid,
    Effect.withSpan("Stages.emit")
  )
