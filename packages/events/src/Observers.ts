/**
 * Observers are layers that subscribe to the bus for the life of their scope: logging, metrics, storage.
 * Each subscribes while the layer is built, so it sees every event published after that.
 */
import { Effect, type FileSystem, Layer, Metric } from "effect"
import { EventBus } from "./EventBus.ts"
import { type EventLogStorage, type EventLogUnavailable, storage as storageLayer } from "./EventLog.ts"

/** Logs every event at debug level with its type and entity, annotated with the event id. */
export const logging: Layer.Layer<never, never, EventBus> = Layer.effectDiscard(
  EventBus.use((bus) =>
    bus.observe((batch) =>
      Effect.forEach(
        batch,
        (event) =>
          Effect.logDebug(`${event.type} ${event.entityId}`).pipe(
            Effect.annotateLogs({ eventId: event.id, entityType: event.entityType })
          ),
        { discard: true }
      )
    )
  )
)

/** Counter of events seen, tagged by `type`: `testbed_events_total{type="test.finished"}`. */
export const eventsTotal = Metric.counter("testbed_events_total", {
  description: "Events published on the testbed event bus, by type"
})

/** Counts every event in `eventsTotal`, one counter series per event type. */
export const metrics: Layer.Layer<never, never, EventBus> = Layer.effectDiscard(
  EventBus.use((bus) =>
    bus.observe((batch) => {
      const byType = new Map<string, number>()
      for (const event of batch) byType.set(event.type, (byType.get(event.type) ?? 0) + 1)
      return Effect.forEach(
        byType,
        ([type, count]) => Metric.update(Metric.withAttributes(eventsTotal, { type }), count),
        { discard: true }
      )
    })
  )
)

/** Writes every event to a JSONL event log at `path`; `EventLogStorage.failed` says when a write failed. */
export const storage = (
  path: string
): Layer.Layer<EventLogStorage, EventLogUnavailable, EventBus | FileSystem.FileSystem> => storageLayer(path)
