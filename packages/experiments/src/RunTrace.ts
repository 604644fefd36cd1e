/**
 * A run exported as an OpenTelemetry trace (`testbed run --otlp URL`), through Effect's OTLP exporter: spans are made
 * from the run's events, so the trace has the run's shape whatever fibers did the work — experiment → test →
 * attempt → service and step; a failed attempt, a crashed service or a failed step is an error span with an event
 * saying why, and a stage impairment (a fault window) is an event on the experiment span. The trace id is
 * published as `experiment.traced`, so the summary and the HTML report carry it.
 */
import { EventBus, type TestbedEvent } from "@testbed/events"
import { Effect, Exit, Layer, type Tracer } from "effect"
import { FetchHttpClient } from "effect/http"
import { OtlpSerialization, OtlpTracer } from "effect/observability"

interface Spans {
  root: Tracer.Span | undefined
  readonly tests: Map<string, Tracer.Span>
  readonly attempts: Map<string, Tracer.Span>
  readonly services: Map<string, Tracer.Span>
  readonly steps: Map<string, Tracer.Span>
}

/** Nanoseconds of an event's timestamp (the event's time, not the moment the observer saw it). */
const nanosOf = (event: TestbedEvent.TestbedEvent): bigint => BigInt(Date.parse(event.timestamp)) * 1_000_000n

const ok = Exit.void
const failed = (reason: string) => Exit.fail(reason)

const open = (name: string, parent: Tracer.Span | undefined, attributes: Record<string, unknown>) =>
  Effect.makeSpan(name, { attributes, ...(parent === undefined ? { root: true } : { parent }), kind: "internal" })

const close = (
  map: Map<string, Tracer.Span>,
  key: string,
  event: TestbedEvent.TestbedEvent,
  error: string | undefined
) => {
  const span = map.get(key)
  if (span === undefined) return
  map.delete(key)
  if (error !== undefined) span.event("failure", nanosOf(event), { reason: error })
  span.end(nanosOf(event), error === undefined ? ok : failed(error))
}

const testStarted = Effect.fnUntraced(function* (spans: Spans, event: TestbedEvent.EventOf<"test.started">) {
  const name = event.data.name
  if (!spans.tests.has(name)) spans.tests.set(name, yield* open(`test ${name}`, spans.root, { "testbed.test": name }))
  const attempt = yield* open(`attempt ${event.data.attempt}`, spans.tests.get(name), {
    "testbed.test": name,
    "testbed.attempt": event.data.attempt
  })
  spans.attempts.set(name, attempt)
})

const testFinished = (spans: Spans, event: TestbedEvent.EventOf<"test.finished">) => {
  const { name, status } = event.data
  const error = status === "passed" || status === "skipped" ? undefined : (event.data.errorMessage ?? status)
  spans.attempts.get(name)?.attribute("testbed.status", status)
  close(spans.attempts, name, event, error)
  if (event.data.willRetry === true) return
  spans.tests.get(name)?.attribute("testbed.status", status)
  close(spans.tests, name, event, error)
}

/** The spans one event opens or closes. */
const handle = (spans: Spans, bus: EventBus.EventBus["Service"], event: TestbedEvent.TestbedEvent) => {
  switch (event.type) {
    case "experiment.started":
      return Effect.gen(function* () {
        const root = yield* open(`experiment ${event.data.name}`, undefined, { "testbed.experiment": event.data.name })
        spans.root = root
        // Forked: this observer must not wait on its own queue.
        yield* Effect.forkDetach(
          bus.emit({
            type: "experiment.traced",
            entityId: event.entityId,
            data: { traceId: root.traceId, spanId: root.spanId }
          })
        )
      })
    case "test.started":
      return testStarted(spans, event)
    case "test.finished":
      return Effect.sync(() => testFinished(spans, event))
    case "service.started":
      return Effect.gen(function* () {
        const span = yield* open(`service ${event.data.service}`, spans.attempts.get(event.data.test), {
          "testbed.service": event.data.service,
          "testbed.implementation": event.data.implementation,
          ...(event.data.role === undefined ? {} : { "testbed.role": event.data.role })
        })
        spans.services.set(event.entityId, span)
      })
    case "service.exited":
      return Effect.sync(() =>
        close(
          spans.services,
          event.entityId,
          event,
          event.data.crashed
            ? (event.data.killedBy ?? `exit code ${event.data.exitCode}, ${event.data.signal}`)
            : undefined
        )
      )
    case "step.started":
      return Effect.gen(function* () {
        const span = yield* open(`step ${event.data.index} ${event.data.kind}`, spans.attempts.get(event.data.test), {
          "testbed.step": event.data.index,
          "testbed.kind": event.data.kind
        })
        spans.steps.set(event.entityId, span)
      })
    case "step.finished":
      return Effect.sync(() =>
        close(
          spans.steps,
          event.entityId,
          event,
          event.data.status === "passed" ? undefined : (event.data.message ?? event.data.status)
        )
      )
    case "stage.impaired":
      return Effect.sync(() =>
        spans.root?.event("fault window opened", nanosOf(event), { description: event.data.description })
      )
    case "experiment.finished":
      return Effect.sync(() => {
        for (const map of [spans.steps, spans.services, spans.attempts, spans.tests]) {
          for (const key of [...map.keys()]) close(map, key, event, "the run ended first")
        }
        spans.root?.attribute("testbed.status", event.data.status)
        spans.root?.end(
          nanosOf(event),
          event.data.status === "completed" ? ok : failed(event.data.reason ?? event.data.status)
        )
        spans.root = undefined
      })
    default:
      return Effect.void
  }
}

/** Makes spans from the bus for the life of its scope, with whatever tracer is provided. */
export const observer: Layer.Layer<never, never, EventBus.EventBus> = Layer.effectDiscard(
  Effect.gen(function* () {
    const bus = yield* EventBus.EventBus
    const spans: Spans = {
      root: undefined,
      tests: new Map(),
      attempts: new Map(),
      services: new Map(),
      steps: new Map()
    }
    yield* bus.observe((batch) => Effect.forEach(batch, (event) => handle(spans, bus, event), { discard: true }))
  })
)

/**
 * The observer with Effect's OTLP tracer (JSON over HTTP to `url`, e.g. `http://127.0.0.1:4318/v1/traces`): spans
 * are sent every second and what is left when the run ends (within 5 seconds).
 */
export const layer = (url: string): Layer.Layer<never, never, EventBus.EventBus> =>
  observer.pipe(
    Layer.provide(
      OtlpTracer.layer({
        url,
        resource: { serviceName: "testbed" },
        exportInterval: "1 second",
        shutdownTimeout: "5 seconds"
      })
    ),
    Layer.provide(OtlpSerialization.layerJson),
    Layer.provide(FetchHttpClient.layer)
  )
