/**
 * A run watched live from Prometheus: Effect metrics fed from the event bus (tests by status, services running,
 * command durations, each service's memory and CPU from its samples, events by type) and served in the Prometheus
 * text format at `http://HOST:PORT/metrics` for the length of the run (`testbed run --metrics-port PORT`).
 */
import { createServer, type Server } from "node:http"
import { EventBus, ExitCode, Observers, type TestbedEvent } from "@testbed/events"
import { Effect, Layer, Metric, Runtime, Schema } from "effect"
import { PrometheusMetrics } from "effect/observability"

export const testsTotal = Metric.counter("testbed_tests_total", {
  description: "Test attempts finished, by status"
})
export const servicesRunning = Metric.gauge("testbed_services_running", {
  description: "Services started and not yet ended"
})
export const commandDuration = Metric.histogram("testbed_command_duration_seconds", {
  description: "How long commands (steps, readiness checks) ran",
  boundaries: Metric.exponentialBoundaries({ start: 0.005, factor: 2, count: 14 })
})
export const serviceRss = Metric.gauge("testbed_service_rss_bytes", {
  description: "Resident memory of a service's process tree at its latest sample"
})
export const serviceCpu = Metric.gauge("testbed_service_cpu_seconds", {
  description: "CPU time of a service's process tree so far"
})

/** The metric updates one event makes (none for most). */
const updatesOf = (event: TestbedEvent.TestbedEvent): Effect.Effect<void> => {
  switch (event.type) {
    case "test.finished":
      return Metric.update(Metric.withAttributes(testsTotal, { status: event.data.status }), 1)
    case "service.started":
      return Metric.modify(servicesRunning, 1)
    case "service.exited":
      return Metric.modify(servicesRunning, -1)
    case "command.completed":
    case "command.failed":
    case "command.timed_out":
      return Metric.update(commandDuration, event.data.durationMs / 1000)
    case "service.resources": {
      const attributes = { test: event.data.test, service: event.data.service }
      return Effect.andThen(
        Metric.update(Metric.withAttributes(serviceRss, attributes), event.data.rssBytes),
        Metric.update(Metric.withAttributes(serviceCpu, attributes), event.data.cpuMs / 1000)
      )
    }
    default:
      return Effect.void
  }
}

/** Feeds the metrics from the bus for the life of its scope (with `Observers.metrics`' events by type). */
export const observer: Layer.Layer<never, never, EventBus.EventBus> = Layer.merge(
  Observers.metrics,
  Layer.effectDiscard(
    EventBus.EventBus.use((bus) => bus.observe((batch) => Effect.forEach(batch, updatesOf, { discard: true })))
  )
)

export class MetricsEndpointFailed extends Schema.TaggedError<MetricsEndpointFailed>()("MetricsEndpointFailed", {
  host: Schema.String,
  port: Schema.Int,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot serve metrics on ${this.host}:${this.port}: ${this.reason}`
  }
  /** A port in use or refused is the user's to change: a usage error. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

export interface EndpointOptions {
  readonly port: number
  /** Default 127.0.0.1: the metrics name tests and services, so they are not offered to the network unasked. */
  readonly host?: string | undefined
  /** Brings figures kept elsewhere into the metrics just before each scrape is answered (e.g. a server's counters). */
  readonly refresh?: Effect.Effect<void> | undefined
}

const listen = (server: Server, host: string, port: number) =>
  Effect.callback<number, MetricsEndpointFailed>((resume) => {
    server.once("error", (error) =>
      resume(Effect.fail(new MetricsEndpointFailed({ host, port, reason: error.message })))
    )
    server.listen(port, host, () => {
      const address = server.address()
      resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : port))
    })
  })

const close = (server: Server) =>
  Effect.callback<void>((resume) => {
    server.close(() => resume(Effect.void))
    server.closeAllConnections()
  })

/**
 * Serves `GET /metrics` (anything else is 404) until the scope closes; succeeds with the port it listens on (useful
 * with port 0). Only the metrics text is served: no request body is read.
 */
export const serve = Effect.fn("RunMetrics.serve")(function* (options: EndpointOptions) {
  const host = options.host ?? "127.0.0.1"
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    return yield* new MetricsEndpointFailed({ host, port: options.port, reason: "not a port (0 to 65535)" })
  }
  const context = yield* Effect.context<never>()
  const server = createServer((request, response) => {
    if (request.method !== "GET" || (request.url ?? "").split("?")[0] !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n")
      return
    }
    const answer = () =>
      response
        .writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
        .end(PrometheusMetrics.formatUnsafe(context))
    if (options.refresh === undefined) return answer()
    Effect.runFork(options.refresh.pipe(Effect.provideContext(context), Effect.ensuring(Effect.sync(answer))))
  })
  // A scrape that stalls must not hold the run's end: idle sockets are closed after 10 seconds.
  server.requestTimeout = 10_000
  server.headersTimeout = 10_000
  return yield* Effect.acquireRelease(listen(server, host, options.port), () => close(server))
})

/** A metric registry of its own, made each time the layer is built (Effect's default one is the process's). */
export const ownRegistry = Layer.effect(
  Metric.MetricRegistry,
  Effect.sync((): Metric.MetricRegistry => new Map())
)

/**
 * The observer and the endpoint together, for one run, on a metric registry of its own made each time the layer
 * is built: Effect's default registry is global to the process, and a second run in it would add to the first's.
 */
export const layer = (options: EndpointOptions): Layer.Layer<never, MetricsEndpointFailed, EventBus.EventBus> =>
  Layer.merge(observer, Layer.effectDiscard(serve(options))).pipe(
    Layer.provide(
      Layer.effect(
        Metric.MetricRegistry,
        Effect.sync((): Metric.MetricRegistry => new Map())
      )
    )
  )
