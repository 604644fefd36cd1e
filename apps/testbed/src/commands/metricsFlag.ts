/**
 * `--metrics-port PORT` of the long-running commands (`fleet operator`, `replay serve`): live metrics in the
 * Prometheus text format at http://127.0.0.1:PORT/metrics, on a metric registry of the command's own, for as
 * long as the command runs. A port in use is exit 2 (RunMetrics.MetricsEndpointFailed).
 */
import type { EventBus } from "@testbed/events"
import * as RunMetrics from "@testbed/experiments/RunMetrics"
import { type Effect, Layer, Option } from "effect"
import { Flag } from "effect/cli"

export const metricsPort = Flag.Int("metrics-port").pipe(
  Flag.withDescription("Serve live metrics (Prometheus text format) on 127.0.0.1:PORT/metrics while it runs"),
  Flag.optional
)

/** The endpoint fed by `observer` (from the bus), with `refresh` run before each scrape; nothing without a port. */
export const metricsLayer = (
  port: Option.Option<number>,
  observer: Layer.Layer<never, never, EventBus.EventBus>,
  refresh?: Effect.Effect<void>
): Layer.Layer<never, RunMetrics.MetricsEndpointFailed, EventBus.EventBus> =>
  Option.match(port, {
    onNone: () => Layer.empty,
    onSome: (value) =>
      Layer.merge(observer, Layer.effectDiscard(RunMetrics.serve({ port: value, refresh }))).pipe(
        Layer.provide(RunMetrics.ownRegistry)
      )
  })
