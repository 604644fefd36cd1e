/**
 * The in-process event bus: every part of a run publishes here; observers (log, metrics, storage,
 * progress, reports) subscribe. Bounded; by default a slow subscriber back-pressures publishers, so no
 * event is ever dropped silently. `dropping` and `sliding` are explicit opt-ins for best-effort observers.
 */
import { Cause, Context, Effect, Fiber, Layer, Queue, type Scope, Stream } from "effect"
import * as TestbedEvent from "./TestbedEvent.ts"

/** What happens when a subscriber falls `capacity` events behind. */
export type SlowSubscriberPolicy = "backpressure" | "dropping" | "sliding"

export interface EventBusOptions {
  /** Events buffered per slowest subscriber before the policy applies. Default 4096. */
  readonly capacity?: number
  /** Default `backpressure`: `publish` waits for the slowest subscriber. */
  readonly policy?: SlowSubscriberPolicy
}

/** What `emit` takes: a member of `TestbedEvent` without its id and time (`type` selects the shape of `data`). */
export type EmitInput<T extends TestbedEvent.TestbedEventType> = TestbedEvent.Input<T>

export class EventBus extends Context.Service<
  EventBus,
  {
    /** Publishes one event. Subscribers registered before this call see it. */
    readonly publish: (event: TestbedEvent.TestbedEvent) => Effect.Effect<void>
    readonly publishAll: (events: Iterable<TestbedEvent.TestbedEvent>) => Effect.Effect<void>
    /**
     * Stamps a payload with id and timestamp, publishes it, and returns the event. Only members of `TestbedEvent`
     * get in: `type` selects the entity type and the shape of `data`, checked by the compiler.
     */
    readonly emit: <T extends TestbedEvent.TestbedEventType>(
      input: EmitInput<T>
    ) => Effect.Effect<TestbedEvent.EventOf<T>>
    /**
     * Registers a subscriber now (so nothing published after this effect returns is missed) and returns
     * the stream of its events. The subscription lives as long as the enclosing Scope.
     */
    readonly subscribe: Effect.Effect<Stream.Stream<TestbedEvent.TestbedEvent>, never, Scope.Scope>
    /**
     * Runs `handle` on every batch of events published from now until the enclosing Scope closes. Closing the
     * scope hands over every event published before it closed, then stops: an observer never loses a batch.
     */
    readonly observe: (
      handle: (batch: ReadonlyArray<TestbedEvent.TestbedEvent>) => Effect.Effect<void>
    ) => Effect.Effect<void, never, Scope.Scope>
  }
>()("@testbed/events/EventBus") {
  static readonly layerWith = (options: EventBusOptions = {}) =>
    Layer.effect(
      EventBus,
      Effect.gen(function* () {
        const capacity = options.capacity ?? 4096
        // One queue per subscriber rather than a PubSub: publishing to a single observer then costs one queue
        // offer (PubSub's per-message bookkeeping made it 10x slower than a raw queue here; see bench/events.ts).
        const makeQueue = () =>
          options.policy === "dropping"
            ? Queue.dropping<TestbedEvent.TestbedEvent, Cause.Done>(capacity)
            : options.policy === "sliding"
              ? Queue.sliding<TestbedEvent.TestbedEvent, Cause.Done>(capacity)
              : Queue.bounded<TestbedEvent.TestbedEvent, Cause.Done>(capacity)
        let subscribers: ReadonlyArray<Queue.Queue<TestbedEvent.TestbedEvent, Cause.Done>> = []
        yield* Effect.addFinalizer(() =>
          Effect.forEach(subscribers, (queue) => Queue.shutdown(queue), { discard: true })
        )

        const publish = (event: TestbedEvent.TestbedEvent): Effect.Effect<void> => {
          const current = subscribers
          if (current.length === 0) return Effect.void
          if (current.length === 1) return Effect.asVoid(Queue.offer(current[0]!, event))
          return Effect.forEach(current, (queue) => Queue.offer(queue, event), { discard: true })
        }
        const publishAll = (events: Iterable<TestbedEvent.TestbedEvent>): Effect.Effect<void> => {
          const batch = Array.from(events)
          return Effect.forEach(subscribers, (queue) => Queue.offerAll(queue, batch), { discard: true })
        }

        // Registered synchronously, so every publish that starts after this returns reaches the new queue.
        const subscribeQueue = Effect.acquireRelease(
          Effect.tap(makeQueue(), (queue) =>
            Effect.sync(() => {
              subscribers = [...subscribers, queue]
            })
          ),
          (queue) =>
            Effect.andThen(
              Effect.sync(() => {
                subscribers = subscribers.filter((q) => q !== queue)
              }),
              Queue.shutdown(queue)
            )
        )

        // Untraced: observers (the run's log, its trace exporter) subscribe before the run's root span opens, so a
        // span here would be a trace of its own in every exported run.
        const observe = Effect.fnUntraced(function* (
          handle: (batch: ReadonlyArray<TestbedEvent.TestbedEvent>) => Effect.Effect<void>
        ) {
          const queue = yield* subscribeQueue
          // Stopped by ending the queue, not by interruption: an interrupted taker can lose the batch it
          // was being handed; an ended queue hands over everything before the end, then says Done.
          const loop = Effect.forever(Effect.flatMap(Queue.takeAll(queue), handle)).pipe(
            Effect.catchIf(Cause.isDone, () => Effect.void)
          )
          const fiber = yield* Effect.forkDetach(loop)
          yield* Effect.addFinalizer(() => Effect.andThen(Queue.end(queue), Fiber.await(fiber)))
        })

        return EventBus.of({
          publish,
          publishAll,
          emit: (input) => Effect.tap(TestbedEvent.make(input), publish),
          subscribe: Effect.map(subscribeQueue, (queue) => Stream.fromQueue(queue)),
          observe
        })
      })
    )

  /** Back-pressuring bus with the default capacity. */
  static readonly layer = EventBus.layerWith()
}

/** Publishes through the bus in context. */
export const emit = <T extends TestbedEvent.TestbedEventType>(
  input: EmitInput<T>
): Effect.Effect<TestbedEvent.EventOf<T>, never, EventBus> => EventBus.use((bus) => bus.emit(input))
