/**
 * The in-process event bus: every part of a run publishes here; observers (log, metrics, storage,
 * progress, reports) subscribe. Bounded; by default a slow subscriber back-pressures publishers, so no
 * event is ever dropped silently. `dropping` and `sliding` are explicit opt-ins for best-effort observers.
 */
import { Context, Effect, Layer, PubSub, type Scope, Stream } from "effect"
import * as Event from "./Event.ts"

/** What happens when a subscriber falls `capacity` events behind. */
export type SlowSubscriberPolicy = "backpressure" | "dropping" | "sliding"

export interface EventBusOptions {
  /** Events buffered per slowest subscriber before the policy applies. Default 4096. */
  readonly capacity?: number
  /** Default `backpressure`: `publish` waits for the slowest subscriber. */
  readonly policy?: SlowSubscriberPolicy
}

export interface EmitInput<D> {
  readonly type: string
  readonly entityType: string
  readonly entityId: string
  readonly data: D
}

export class EventBus extends Context.Service<
  EventBus,
  {
    /** Publishes one event. Subscribers registered before this call see it. */
    readonly publish: (event: Event.Event) => Effect.Effect<void>
    readonly publishAll: (events: Iterable<Event.Event>) => Effect.Effect<void>
    /** Stamps a payload with id and timestamp, publishes it, and returns the event. */
    readonly emit: <D>(input: EmitInput<D>) => Effect.Effect<Event.Event>
    /**
     * Registers a subscriber now (so nothing published after this effect returns is missed) and returns
     * the stream of its events. The subscription lives as long as the enclosing Scope.
     */
    readonly subscribe: Effect.Effect<Stream.Stream<Event.Event>, never, Scope.Scope>
  }
>()("@testbed/events/EventBus") {
  static readonly layerWith = (options: EventBusOptions = {}) =>
    Layer.effect(
      EventBus,
      Effect.gen(function* () {
        const capacity = options.capacity ?? 4096
        const pubsub = yield* options.policy === "dropping"
          ? PubSub.dropping<Event.Event>(capacity)
          : options.policy === "sliding"
            ? PubSub.sliding<Event.Event>(capacity)
            : PubSub.bounded<Event.Event>(capacity)
        yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
        const publish = (event: Event.Event) => Effect.asVoid(PubSub.publish(pubsub, event))
        return EventBus.of({
          publish,
          publishAll: (events) => Effect.asVoid(PubSub.publishAll(pubsub, events)),
          emit: (input) => Effect.tap(Event.make(input), publish),
          subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription)
        })
      })
    )

  /** Back-pressuring bus with the default capacity. */
  static readonly layer = EventBus.layerWith()
}

/** Publishes through the bus in context. */
export const emit = <D>(input: EmitInput<D>): Effect.Effect<Event.Event, never, EventBus> =>
  EventBus.use((bus) => bus.emit(input))
