// The engine's event stream (`GET /events`): what happened to containers and networks, as it happens. Waiting on
// these is a signal rather than a poll (a container that dies, a healthcheck that turns healthy), and their
// timestamps show where the time of an `up` goes (bench/stages.ts).
import type Dockerode from "dockerode"
import { Effect, Option, Queue, Schema, type Scope, Stream } from "effect"
import type { DockerFailed, DockerUnavailable } from "../StageError.ts"
import { call } from "./engine.ts"

/** One event as the engine sends it; unknown fields are ignored. */
export const EngineEvent = Schema.Struct({
  Type: Schema.String,
  Action: Schema.String,
  Actor: Schema.Struct({
    ID: Schema.String,
    Attributes: Schema.optionalKey(Schema.Record(Schema.String, Schema.String))
  }),
  timeNano: Schema.Number
})
export type EngineEvent = typeof EngineEvent.Type

const decodeLine = Schema.decodeUnknownOption(Schema.fromJsonString(EngineEvent))

/** Which events: by type (`container`, `network`), by action, by label, by container id. */
export interface EventFilter {
  readonly type?: ReadonlyArray<string>
  readonly event?: ReadonlyArray<string>
  readonly label?: Readonly<Record<string, string>>
  readonly container?: ReadonlyArray<string>
}

const filters = (filter: EventFilter): Record<string, Array<string>> => ({
  ...(filter.type ? { type: [...filter.type] } : {}),
  ...(filter.event ? { event: [...filter.event] } : {}),
  ...(filter.container ? { container: [...filter.container] } : {}),
  ...(filter.label ? { label: Object.entries(filter.label).map(([k, v]) => (v === "" ? k : `${k}=${v}`)) } : {})
})

/** Lines the engine sends that are not events (none are expected) are skipped, never fatal. */
const events = (readable: NodeJS.ReadableStream) =>
  Stream.callback<EngineEvent>((queue) =>
    Effect.sync(() => {
      const decoder = new TextDecoder()
      let rest = ""
      readable.on("data", (chunk: Uint8Array) => {
        const parts = (rest + decoder.decode(chunk, { stream: true })).split("\n")
        rest = parts.pop() ?? ""
        for (const line of parts) {
          const event = decodeLine(line)
          if (Option.isSome(event)) Queue.offerUnsafe(queue, event.value)
        }
      })
      readable.on("end", () => Queue.endUnsafe(queue))
      readable.on("error", () => Queue.endUnsafe(queue))
    })
  )

/**
 * Events from now on (or from `since`, in seconds since the epoch) until the scope of the stream ends. The request
 * is open as soon as the returned effect succeeds, so an event that happens after it is never missed.
 */
export const subscribe = Effect.fn("Docker.events")(function* (
  docker: Dockerode,
  host: string,
  filter: EventFilter,
  since?: number
): Effect.fn.Return<Stream.Stream<EngineEvent>, DockerFailed | DockerUnavailable, Scope.Scope> {
  const readable = yield* Effect.acquireRelease(
    call(host, "events", () =>
      docker.getEvents({ filters: filters(filter), ...(since === undefined ? {} : { since }) })
    ),
    (r) => Effect.sync(() => (r as { destroy?: () => void }).destroy?.())
  )
  return events(readable)
})
