/**
 * A replay server watched live from Prometheus (`testbed replay serve --metrics-port PORT`): its counters as Effect
 * metrics, brought up to date from the server's own summary when a scrape asks (`refresher`), so serving costs
 * nothing more between scrapes.
 */
import { Effect, Metric } from "effect"
import type { Summary } from "./ReplayServer.ts"

export const connectionsTotal = Metric.counter("testbed_replay_connections_total", {
  description: "Client connections accepted"
})
export const connectionsCompleted = Metric.counter("testbed_replay_connections_completed_total", {
  description: "Connections whose script ran to its end"
})
export const roundTripsTotal = Metric.counter("testbed_replay_round_trips_total", {
  description: "Script steps matched: client bytes as recorded, then the recorded answer"
})
export const bytesReplayed = Metric.counter("testbed_replay_bytes_replayed_total", {
  description: "Bytes of recorded answers sent to clients (open connections included)"
})
export const bytesReceived = Metric.counter("testbed_replay_bytes_received_total", {
  description: "Bytes received from clients (open connections included)"
})
export const faultsInjected = Metric.counter("testbed_replay_faults_injected_total", {
  description: "Faults the server injected while answering"
})

const counters = [
  [connectionsTotal, "connections"],
  [connectionsCompleted, "completed"],
  [roundTripsTotal, "stepsMatched"],
  [bytesReplayed, "bytesSent"],
  [bytesReceived, "bytesReceived"],
  [faultsInjected, "faultsInjected"]
] as const

/**
 * An effect that adds to each counter (nothing while `summary` has none: the server is not listening yet) what the summary gained since the counter was last raised: the summary's
 * figures only rise, so the counters follow them exactly, whatever order concurrent scrapes read them in.
 */
export const refresher = (summary: Effect.Effect<Summary | undefined>): Effect.Effect<void> => {
  const counted = new Map<keyof Summary, number>()
  return Effect.flatMap(summary, (now) =>
    now === undefined
      ? Effect.void
      : Effect.forEach(
          counters,
          ([counter, key]) => {
            const delta = now[key] - (counted.get(key) ?? 0)
            if (delta <= 0) return Effect.void
            counted.set(key, now[key])
            return Metric.update(counter, delta)
          },
          { discard: true }
        )
  ).pipe(Effect.withSpan("ReplayMetrics.refresh"))
}
