/**
 * Arguments of the NDS actions, checked when the script loads: how many (with the names the format table gives
 * them) and of which types, so a malformed script fails before a client connects, with a message naming the
 * argument. The older modules checked the count of a few actions only and accepted anything else.
 */
import { Effect, Result, Schema } from "effect"
import type { Action, ActionArg, ActionIO } from "../Action.ts"
import type { ReplayFailure } from "../ReplayError.ts"

/** One positional argument: its name in the format table, what it must be (for messages), its Schema. */
export interface Param<A> {
  readonly name: string
  readonly expected: string
  readonly is: (u: unknown) => u is A
}

export const param = <A>(name: string, expected: string, schema: Schema.Schema<A>): Param<A> => ({
  name,
  expected,
  is: Schema.is(schema)
})

/** How an action's arguments are decoded, and how its usage reads in messages. */
export interface Signature<A> {
  readonly usage: string
  readonly decode: (raw: ReadonlyArray<ActionArg>) => Result.Result<A, string>
}

type Values<P extends ReadonlyArray<Param<unknown>>> = {
  readonly [K in keyof P]: P[K] extends Param<infer A> ? A : never
}

const show = (value: ActionArg): string =>
  value instanceof Uint8Array ? `${value.length} byte(s) (the step's response)` : JSON.stringify(value)

const plural = (n: number) => `${n} argument${n === 1 ? "" : "s"}`

const wrongCount = (usage: string, count: string, raw: ReadonlyArray<ActionArg>): string => {
  const response = raw.length > 0 && raw[raw.length - 1] instanceof Uint8Array
  return `takes ${count} (${usage || "none"}), got ${raw.length}${
    response ? " (a response on the step is passed as a last argument, and this action takes none)" : ""
  }`
}

const check = (p: Param<unknown>, position: number, value: ActionArg): string | undefined =>
  p.is(value) ? undefined : `argument ${position} (${p.name}) must be ${p.expected}; got ${show(value)}`

/**
 * Exactly these arguments, the last `optional` of which may be left out (they decode to undefined).
 */
export const fixed = <const P extends ReadonlyArray<Param<unknown>>>(
  params: P,
  options: { readonly optional?: number } = {}
): Signature<Values<P>> => {
  const required = params.length - (options.optional ?? 0)
  const usage = params.map((p, i) => (i < required ? p.name : `[${p.name}]`)).join(" ")
  const count = required === params.length ? plural(required) : `${required} to ${plural(params.length)}`
  return {
    usage,
    decode: (raw) => {
      if (raw.length < required || raw.length > params.length) return Result.fail(wrongCount(usage, count, raw))
      for (let i = 0; i < raw.length; i++) {
        const problem = check(params[i]!, i + 1, raw[i]!)
        if (problem !== undefined) return Result.fail(problem)
      }
      return Result.succeed(params.map((_, i) => raw[i]) as unknown as Values<P>)
    }
  }
}

/** One or more arguments of the same kind. */
export const some = <A>(p: Param<A>): Signature<ReadonlyArray<A>> => {
  const usage = `${p.name}…`
  return {
    usage,
    decode: (raw) => {
      if (raw.length === 0) return Result.fail(wrongCount(usage, "at least 1 argument", raw))
      for (let i = 0; i < raw.length; i++) {
        const problem = check(p, i + 1, raw[i]!)
        if (problem !== undefined) return Result.fail(problem)
      }
      return Result.succeed(raw as ReadonlyArray<A>)
    }
  }
}

/**
 * An action of a module with per-connection state `S`: `prepare` decodes the arguments when the script
 * loads (and may refuse them with a message), `execute` runs on a connection.
 */
export const action = <A, P, S>(
  signature: Signature<A>,
  prepare: (args: A) => Result.Result<P, string>,
  execute: (prepared: P, state: S, io: ActionIO) => Effect.Effect<void, ReplayFailure>
): Action<S> => ({
  prepare: (raw) =>
    Result.flatMap(Result.flatMap(signature.decode(raw), prepare), (prepared) =>
      Result.succeed((state: S, io: ActionIO) => execute(prepared, state, io))
    )
})

// Schemas shared by both modules.

export const Name = Schema.String.check(Schema.isMinLength(1))
export const Uint32 = Schema.Int.check(Schema.isUint32())
export const Uint16 = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xffff }))
export const Count = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1 << 24 }))
/** A number, or a decimal number as a string: the string is written as given where the field is text. */
export const NumberOrText = Schema.Union([
  Schema.Finite,
  Schema.String.check(Schema.isPattern(/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/))
])
/** As in the older modules: true, 1 or "online" mean online; anything else offline. */
export const Online = Schema.Union([Schema.Boolean, Schema.String, Schema.Finite])
export const isOnline = (online: boolean | string | number): boolean =>
  online === true || online === 1 || online === "online"
/** A sample value: the number is converted to the channel's type when written. */
export const Value = NumberOrText

export const numberOf = (x: number | string): number => (typeof x === "number" ? x : Number(x))

/** The channels of `ids` in the connection's table; an id never registered on this connection fails the step. */
export const lookup = <Id, C>(
  table: ReadonlyMap<string, C>,
  io: ActionIO,
  ids: ReadonlyArray<Id>,
  key: (id: Id) => string
): Effect.Effect<ReadonlyArray<C>, ReplayFailure> =>
  Effect.forEach(ids, (id) => {
    const channel = table.get(key(id))
    if (channel !== undefined) return Effect.succeed(channel)
    const known = [...table.keys()].join(", ") || "none"
    return io.fail(`channel ${key(id)} is not registered on this connection (registered: ${known})`)
  })

/** A failed encoding fails the step. */
export const orFail = <A>(io: ActionIO, result: Result.Result<A, string>): Effect.Effect<A, ReplayFailure> =>
  Result.isSuccess(result) ? Effect.succeed(result.success) : io.fail(result.failure)

/** For actions whose arguments need nothing more at load time. */
export const always = <A>(a: A): Result.Result<A, never> => Result.succeed(a)
