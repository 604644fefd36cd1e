// Events of the stage family (`stage.*`, entity `stage`, entityId the stage's name) on the bus in context.
import { EventBus } from "@testbed/events"
import { Effect } from "effect"

export const emit = Effect.fn("Stages.emit")(function* (type: string, stage: string, data: unknown) {
  const bus = yield* EventBus.EventBus
  yield* bus.emit({ type: `stage.${type}`, entityType: "stage", entityId: stage, data })
})
