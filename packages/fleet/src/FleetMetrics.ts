/**
 * The fleet operator watched live from Prometheus (`testbed fleet operator --metrics-port PORT`): Effect metrics
 * fed from the operator's events on the bus — agents connected now, registrations, commands sent, answered (by
 * outcome) and timed out, and how long each took to be answered. Nothing is added to the operator itself.
 */
import { EventBus, type TestbedEvent } from "@testbed/events"
import { Effect, Layer, Metric } from "effect"

export const agentsConnected = Metric.gauge("testbed_fleet_agents_connected", {
  description: "Agents registered and not reported gone"
})
export const registrationsTotal = Metric.counter("testbed_fleet_registrations_total", {
  description: "Agent registrations accepted (a re-registration counts again)"
})
export const commandsSent = Metric.counter("testbed_fleet_commands_sent_total", {
  description: "Commands sent to agents (one per agent and step)"
})
export const commandsAnswered = Metric.counter("testbed_fleet_commands_answered_total", {
  description: "Commands an agent answered, by outcome (passed, failed)"
})
export const commandsTimedOut = Metric.counter("testbed_fleet_commands_timed_out_total", {
  description: "Commands no answer came for before the step timeout"
})
export const answerDuration = Metric.histogram("testbed_fleet_command_duration_seconds", {
  description: "From sending a command to its answer or timeout",
  boundaries: Metric.exponentialBoundaries({ start: 0.005, factor: 2, count: 14 })
})

/** What one event changes; `connected` is the set of agents up now (the gauge is its size). */
const updatesOf = (event: TestbedEvent.TestbedEvent, connected: Set<string>): Effect.Effect<void> => {
  switch (event.type) {
    case "agent.registered":
    case "agent.reconnected":
      connected.add(event.entityId)
      return Effect.andThen(
        event.type === "agent.registered" ? Metric.update(registrationsTotal, 1) : Effect.void,
        Metric.update(agentsConnected, connected.size)
      )
    case "agent.disconnected":
    case "agent.lost":
      connected.delete(event.entityId)
      return Metric.update(agentsConnected, connected.size)
    case "step.started":
      return event.data.kind === "fleet" ? Metric.update(commandsSent, 1) : Effect.void
    case "step.finished": {
      if (event.data.kind !== "fleet" || event.data.status === "interrupted") return Effect.void
      const counted =
        event.data.status === "timeout"
          ? Metric.update(commandsTimedOut, 1)
          : Metric.update(Metric.withAttributes(commandsAnswered, { status: event.data.status }), 1)
      return Effect.andThen(counted, Metric.update(answerDuration, event.data.durationMs / 1000))
    }
    default:
      return Effect.void
  }
}

/** Feeds the metrics from the bus for the life of its scope. */
export const observer: Layer.Layer<never, never, EventBus.EventBus> = Layer.effectDiscard(
  Effect.gen(function* () {
    const connected = new Set<string>()
    // The gauge reads 0 from the start, not only once an agent came.
    yield* Metric.update(agentsConnected, 0)
    yield* EventBus.EventBus.use((bus) =>
      bus.observe((batch) => Effect.forEach(batch, (event) => updatesOf(event, connected), { discard: true }))
    )
  })
)
