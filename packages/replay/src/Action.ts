/**
 * Modules of actions: the `{"type": "command", "action": "<module>.<action>", "args": [...]}` steps of a script.
 * A module is registered in TypeScript (never loaded from a script's say-so): its actions validate their
 * arguments when the script loads, and run with the connection's input (through the same byte-exact matcher
 * as recorded steps), its output, and a state of the module's own that lives as long as the connection.
 *
 * ```ts
 * const counter = Action.makeModule({
 *   name: "counter",
 *   state: () => ({ n: 0 }),
 *   actions: {
 *     // {"type":"command","action":"counter.hello","args":["hi"]}: expects "hi\n", answers "1\n", "2\n"…
 *     hello: Action.make(Schema.Tuple([Schema.String]), ([word], state: { n: number }, io) =>
 *       Effect.gen(function*() {
 *         yield* io.expect(`${word}\n`)
 *         state.n += 1
 *         yield* io.write(`${state.n}\n`)
 *       }))
 *   }
 * })
 * // then: ActionRegistry.layer([counter]) and a script step {"type":"command","action":"import","args":["counter"]}
 * ```
 */
import { Context, Effect, Layer, Result, Schema, SchemaIssue } from "effect"
import { ActionFailed, type ReplayFailure } from "./ReplayError.ts"

/** A script's args, with the step's response (when it has one) appended as bytes, as the older tool did. */
export type ActionArg = Schema.Json | Uint8Array

/** What an action can do with its connection. */
export interface ActionIO {
  /** Index of the connection (from 0) and the step's path, for error messages. */
  readonly connection: number
  readonly step: string
  /** Reads exactly these bytes from the client, failing with ScriptMismatch at the first differing byte. */
  readonly expect: (bytes: Uint8Array | string) => Effect.Effect<void, ReplayFailure>
  /** Reads one line from the client, `\n` included. */
  readonly readLine: Effect.Effect<Uint8Array, ReplayFailure>
  /** Reads exactly `n` bytes from the client. */
  readonly readBytes: (n: number) => Effect.Effect<Uint8Array, ReplayFailure>
  readonly write: (bytes: Uint8Array | string) => Effect.Effect<void, ReplayFailure>
  /** Fails the step with ActionFailed. */
  readonly fail: (reason: string) => Effect.Effect<never, ActionFailed>
}

/** An action, validated and ready to run on a connection. */
export interface PreparedAction {
  readonly module: string
  readonly run: (io: ActionIO, state: ConnectionState) => Effect.Effect<void, ReplayFailure>
}

/** Per-connection state of every module used on that connection. */
export interface ConnectionState {
  readonly of: <S>(module: string, init: () => S) => S
}

export const makeConnectionState = (): ConnectionState => {
  const states = new Map<string, unknown>()
  return {
    of: <S>(module: string, init: () => S): S => {
      if (!states.has(module)) states.set(module, init())
      return states.get(module) as S
    }
  }
}

/** One action of a module with state `S`. */
export interface Action<S> {
  readonly prepare: (
    args: ReadonlyArray<ActionArg>
  ) => Result.Result<(state: S, io: ActionIO) => Effect.Effect<void, ReplayFailure>, string>
}

/** Defines an action: `args` decodes the step's args at load time; `execute` runs on the connection. */
export const make = <A, S>(
  args: Schema.Decoder<A>,
  execute: (args: A, state: S, io: ActionIO) => Effect.Effect<void, ReplayFailure>
): Action<S> => ({
  prepare: (raw) => {
    const decoded = Schema.decodeUnknownResult(args)(raw)
    return Result.isSuccess(decoded)
      ? Result.succeed((state: S, io: ActionIO) => execute(decoded.success, state, io))
      : Result.fail(SchemaIssue.makeFormatterDefault()(decoded.failure.issue))
  }
})

export interface ActionModule {
  readonly name: string
  readonly actions: ReadonlyArray<string>
  /** Validates `args` for `action` (the name without the module prefix). */
  readonly prepare: (action: string, args: ReadonlyArray<ActionArg>) => Result.Result<PreparedAction, string>
  /**
   * Optional load-time check across one connection's steps, in the order they run (e.g. a channel used before it
   * is registered): the first offending step's path and why, or undefined. Steps of other modules are included.
   */
  readonly check?: (
    steps: ReadonlyArray<{ readonly path: string; readonly prepared: PreparedAction }>
  ) => { readonly path: string; readonly reason: string } | undefined
}

export const makeModule = <S>(options: {
  readonly name: string
  /** A fresh state for each connection. */
  readonly state: () => S
  readonly actions: Readonly<Record<string, Action<S>>>
}): ActionModule => ({
  name: options.name,
  actions: Object.keys(options.actions),
  prepare: (action, args) => {
    const definition = Object.hasOwn(options.actions, action) ? options.actions[action] : undefined
    if (definition === undefined) {
      return Result.fail(
        `module ${options.name} has no action "${action}" (it has ${Object.keys(options.actions).join(", ")})`
      )
    }
    // Every run of an action is a span named for it (`nds1.write-data`): the executors are inline definitions.
    const span = `${options.name}.${action}`
    return Result.map(definition.prepare(args), (execute) => ({
      module: options.name,
      run: (io, state) => Effect.withSpan(execute(state.of(options.name, options.state), io), span)
    }))
  }
})

export const isActionModule = (u: unknown): u is ActionModule =>
  typeof u === "object" &&
  u !== null &&
  typeof (u as ActionModule).name === "string" &&
  typeof (u as ActionModule).prepare === "function"

/** The modules a script may `import`. */
export class ActionRegistry extends Context.Service<
  ActionRegistry,
  { readonly modules: ReadonlyMap<string, ActionModule> }
>()("@testbed/replay/ActionRegistry") {
  static readonly layer = (modules: ReadonlyArray<ActionModule>) =>
    Layer.succeed(ActionRegistry, ActionRegistry.of({ modules: new Map(modules.map((m) => [m.name, m])) }))
  static readonly layerEmpty = ActionRegistry.layer([])
}

/** `io.fail` for actions. */
export const failure = (io: Pick<ActionIO, "connection" | "step">, action: string, reason: string) =>
  Effect.fail(new ActionFailed({ connection: io.connection, step: io.step, action, reason }))
