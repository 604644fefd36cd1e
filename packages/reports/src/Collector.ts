/**
 * Folds a stream of events — live from the bus or read back from an event log — into an ExperimentSummary.
 * Each envelope is decoded with the typed event family its `type` names; events of a type this version does not
 * know (a log from a newer testbed) and events whose payload does not decode are skipped and counted, never fatal.
 */
import { Clock, Effect, Result, Schema, Stream } from "effect"
import { type Event, TestbedEvent } from "@testbed/events"
import type { ExperimentSummary } from "./ExperimentSummary.ts"
import * as Fold from "./internal/fold.ts"
import { finish } from "./internal/finish.ts"

export interface FoldOptions {
  /** ISO time written as `report_metadata.generated_at`; fix it to get byte-identical reports. Default: now. */
  readonly generatedAt?: string
  /** The event log the stream was read from, recorded in the metadata. */
  readonly eventLog?: string
}

interface Family {
  readonly entityType: string
  readonly decodeData: (input: unknown) => Result.Result<unknown, Schema.SchemaError>
}

// One family per event type, found by `type` rather than by trying every member of the union. The envelope is
// already an `Event.Event`, so only the payload is decoded and the entity type compared.
const decoders: ReadonlyMap<string, Family> = new Map(
  TestbedEvent.TestbedEvent.members.map((member) => [
    member.fields.type.literal,
    {
      entityType: member.fields.entityType.literal,
      decodeData: Schema.decodeUnknownResult(member.fields.data as Schema.Codec<unknown>)
    }
  ])
)

// A matrix's name, when a `test.registered` carries one (`matrix.name`): newer logs may; the typed family of this
// version does not have the field, so it is read from the raw payload with its own schema.
const decodeMatrixName = Schema.decodeUnknownResult(
  Schema.Struct({ matrix: Schema.optionalKey(Schema.Struct({ name: Schema.optionalKey(Schema.String) })) })
)

const matrixNameOf = (data: unknown): string | undefined => {
  const decoded = decodeMatrixName(data)
  return Result.isSuccess(decoded) ? decoded.success.matrix?.name : undefined
}

/** The event types this version folds or knowingly ignores. */
export const knownTypes: ReadonlyArray<string> = [...decoders.keys()]

/** An incremental collector, for callers that hold events already (a live observer, a benchmark). */
export interface Collector {
  readonly add: (event: Event.Event) => void
  readonly summary: (meta: { readonly generatedAt: string; readonly eventLog?: string }) => ExperimentSummary
}

export const make = (): Collector => {
  const state = Fold.empty()
  return {
    add: (event) => {
      Fold.seen(state, event.timestamp)
      const family = decoders.get(event.type)
      if (family === undefined) {
        state.unknown++
        state.unknownTypes.add(event.type)
        return
      }
      const data = family.decodeData(event.data)
      if (Result.isFailure(data) || event.entityType !== family.entityType) {
        state.invalid++
        return
      }
      // Safe: `type` names the family, `entityType` matches it and `data` decoded with its schema.
      const typed = { ...event, data: data.success } as TestbedEvent.TestbedEvent
      Fold.add(state, typed, typed.type === "test.registered" ? matrixNameOf(event.data) : undefined)
    },
    summary: (meta) => finish(state, { generatedAt: meta.generatedAt, eventLog: meta.eventLog ?? null })
  }
}

/** Folds every event of the stream into an ExperimentSummary; a stream that ends mid-test gives an interrupted run. */
export const fold: <E, R>(
  events: Stream.Stream<Event.Event, E, R>,
  options?: FoldOptions
) => Effect.Effect<ExperimentSummary, E, R> = Effect.fn("Collector.fold")(function* <E, R>(
  events: Stream.Stream<Event.Event, E, R>,
  options: FoldOptions = {}
) {
  const collector = make()
  yield* Stream.runForEachArray(events, (chunk) =>
    Effect.sync(() => {
      for (const event of chunk) collector.add(event)
    })
  )
  const generatedAt = options.generatedAt ?? new Date(yield* Clock.currentTimeMillis).toISOString()
  return collector.summary(
    options.eventLog === undefined ? { generatedAt } : { generatedAt, eventLog: options.eventLog }
  )
})
