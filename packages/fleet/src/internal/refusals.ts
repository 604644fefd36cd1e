// Messages refused for their signature are counted, and reported (log line and `agent.message_refused` event)
// only for the first few and then every thousandth: a flood of forgeries must not flood the log or the event log.
import type { EventBus } from "@testbed/events"
import { Effect } from "effect"

/** Whether the `count`-th occurrence of something is reported: the first five, then every thousandth. */
export const sampled = (count: number): boolean => count <= 5 || count % 1000 === 0

export type MessageKind = "response" | "running notice" | "lost notice" | "ack" | "registration"

export interface Refusals {
  readonly report: (kind: MessageKind, agentId: string, reason: string) => Effect.Effect<void>
}

export const makeRefusals = (bus: EventBus.EventBus["Service"], who: string): Refusals => {
  const counts = new Map<MessageKind, number>()
  const report = Effect.fn("Refusals.report")(function* (kind: MessageKind, agentId: string, reason: string) {
    const count = (counts.get(kind) ?? 0) + 1
    counts.set(kind, count)
    if (!sampled(count)) return
    // The id came from outside: capped, and quoted so it cannot fake a log line.
    const id = JSON.stringify(agentId.slice(0, 256))
    yield* Effect.logWarning(
      `${who}: ignored ${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind} for agent ${id}: ${reason} (${count} so far)`
    )
    yield* bus.emit({
      type: "agent.message_refused",
      entityId: agentId.slice(0, 256),
      data: { kind, reason, refusedSoFar: count }
    })
  })
  return { report }
}
