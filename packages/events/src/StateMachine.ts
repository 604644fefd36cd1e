/**
 * Generic state machines defined as data (initial state, transition table, final states). A running
 * machine refuses any move its table does not allow with a typed `InvalidTransition`, keeps its
 * history, and publishes `<entity>.state_changed` on the EventBus for every move it makes.
 */
import { Clock, Effect, Ref, Runtime, Schema } from "effect"
import { EventBus } from "./EventBus.ts"
import type { Metadata } from "./StateChange.ts"
import type { MachineEntityType } from "./TestbedEvent.ts"
import * as ExitCode from "./ExitCode.ts"

export interface Definition<S extends string> {
  /** Machine name, e.g. `service`. */
  readonly name: string
  /** The entity its moves are about: each move is published as `<entityType>.state_changed`. */
  readonly entityType: MachineEntityType
  readonly states: ReadonlyArray<S>
  readonly initial: S
  /** Allowed moves: `transitions[from]` lists every `to`. A state absent from the table has no moves. */
  readonly transitions: { readonly [K in S]?: ReadonlyArray<S> }
  readonly final: ReadonlyArray<S>
}

/** Keeps literal state names when declaring a machine. */
export const define = <const S extends string>(definition: Definition<S>): Definition<S> => definition

export class InvalidTransition extends Schema.TaggedError<InvalidTransition>()("InvalidTransition", {
  machine: Schema.String,
  entityId: Schema.String,
  from: Schema.String,
  to: Schema.String,
  trigger: Schema.String
}) {
  /** A caller walked the machine wrong (a bug, not the user's doing): the run counts as failed. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return `${this.machine} ${this.entityId}: cannot move from ${this.from} to ${this.to} (trigger: ${this.trigger})`
  }
}

export interface HistoryEntry<S extends string> {
  readonly from: S
  readonly to: S
  /** ISO 8601 time of the move, from `Clock`. */
  readonly at: string
  readonly trigger: string
  readonly metadata: Metadata
}

/** Whether the table allows `from → to`. */
export const allows = <S extends string>(definition: Definition<S>, from: S, to: S): boolean =>
  definition.transitions[from]?.includes(to) ?? false

export const isFinalState = <S extends string>(definition: Definition<S>, state: S): boolean =>
  definition.final.includes(state)

/** Every state reachable from `from` in one or more moves. */
export const reachable = <S extends string>(definition: Definition<S>, from: S): ReadonlySet<S> => {
  const seen = new Set<S>()
  const stack: Array<S> = [...(definition.transitions[from] ?? [])]
  while (stack.length > 0) {
    const next = stack.pop()!
    if (seen.has(next)) continue
    seen.add(next)
    stack.push(...(definition.transitions[next] ?? []))
  }
  return seen
}

/**
 * Replays a history from the initial state: the state it leads to, or the first entry that the table
 * does not allow (or that does not start where the previous one ended).
 */
export const replay = <S extends string>(
  definition: Definition<S>,
  history: ReadonlyArray<HistoryEntry<S>>
): { readonly _tag: "Valid"; readonly state: S } | { readonly _tag: "Invalid"; readonly index: number } => {
  let state = definition.initial
  for (let index = 0; index < history.length; index++) {
    const entry = history[index]!
    if (entry.from !== state || !allows(definition, entry.from, entry.to)) return { _tag: "Invalid", index }
    state = entry.to
  }
  return { _tag: "Valid", state }
}

export interface StateMachine<S extends string> {
  readonly definition: Definition<S>
  readonly entityId: string
  readonly current: Effect.Effect<S>
  readonly history: Effect.Effect<ReadonlyArray<HistoryEntry<S>>>
  /** Moves to `to`, or fails with `InvalidTransition` leaving state and history untouched. */
  readonly transition: (to: S, trigger: string, metadata?: Metadata) => Effect.Effect<S, InvalidTransition>
  readonly canTransition: (to: S) => Effect.Effect<boolean>
  readonly isFinal: Effect.Effect<boolean>
  /** States reachable from the current one. */
  readonly reachable: Effect.Effect<ReadonlySet<S>>
}

interface MachineState<S extends string> {
  readonly current: S
  readonly history: ReadonlyArray<HistoryEntry<S>>
}

/** Starts a machine in its initial state for one entity; its moves are published on the EventBus. */
export const make = Effect.fn("StateMachine.make")(function* <S extends string>(
  definition: Definition<S>,
  entityId: string
): Effect.fn.Return<StateMachine<S>, never, EventBus> {
  const bus = yield* EventBus
  const state = yield* Ref.make<MachineState<S>>({
    current: definition.initial,
    history: []
  })
  const current = Effect.map(Ref.get(state), (s) => s.current)
  const transition = Effect.fnUntraced(function* (to: S, trigger: string, metadata: Metadata = {}) {
    const millis = yield* Clock.currentTimeMillis
    const at = new Date(millis).toISOString()
    // Check and move atomically so two fibers racing on one machine cannot both move from the same state.
    const moved = yield* Ref.modify(state, (s: MachineState<S>): readonly [HistoryEntry<S> | S, MachineState<S>] => {
      if (!allows(definition, s.current, to)) return [s.current, s]
      const entry: HistoryEntry<S> = { from: s.current, to, at, trigger, metadata }
      return [entry, { current: to, history: [...s.history, entry] }]
    })
    if (typeof moved === "string") {
      return yield* new InvalidTransition({ machine: definition.name, entityId, from: moved, to, trigger })
    }
    yield* bus.emit({
      type: `${definition.entityType}.state_changed` as const,
      entityId,
      data: { machine: definition.name, from: moved.from, to, trigger, metadata }
    })
    return to
  })
  return {
    definition,
    entityId,
    current,
    history: Effect.map(Ref.get(state), (s) => s.history),
    transition,
    canTransition: (to: S) => Effect.map(current, (from) => allows(definition, from, to)),
    isFinal: Effect.map(current, (s) => isFinalState(definition, s)),
    reachable: Effect.map(current, (s) => reachable(definition, s))
  }
})
