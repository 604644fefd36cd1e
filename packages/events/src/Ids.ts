/**
 * Where every id of testbed comes from: event ids, command ids, MQTT client ids, fleet command ids. One service
 * instead of `Math.random` and module counters scattered over the packages, so a test can make every id of a run
 * predictable (`Ids.layerTest(seed)`) and nothing depends on hidden state of a module.
 *
 * It is a `Context.Reference`: code reads it like any service, but it needs no layer — the live generator (a
 * random tag per instance, a counter, `crypto` for tokens) is the default, as `Clock`'s is.
 */
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer } from "effect"

export interface Generator {
  /**
   * An id unique among those this generator hands out: `<prefix>-<tag>-<n>` (the tag is random per generator,
   * `n` counts up in base 36), so ids from one generator sort by creation for a given prefix.
   */
  readonly unique: (prefix: string) => string
  /**
   * `length` random characters of `[0-9a-z]`, for names that must not collide with another process's: MQTT client
   * ids, the command ids an operator sends to agents that remember them.
   */
  readonly token: (length: number) => string
}

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

/** A generator over a source of random bytes: a tag of seven characters, then a counter. */
const fromBytes = (bytes: (count: number) => Uint8Array): Generator => {
  const token = (length: number): string => {
    let text = ""
    // 252 = 7 × 36: bytes at or above it are dropped, so every character is equally likely.
    while (text.length < length) {
      for (const byte of bytes(length - text.length + 4)) {
        if (byte < 252 && text.length < length) text += alphabet[byte % 36]
      }
    }
    return text
  }
  const tag = token(7)
  let counter = 0
  return {
    unique: (prefix) => `${prefix}-${tag}-${(counter++).toString(36)}`,
    token
  }
}

/** The live generator: random bytes from the operating system. */
export const makeLive = (): Generator => fromBytes((count) => randomBytes(count))

/**
 * A deterministic generator: the same seed gives the same ids in the same order (SplitMix32, enough for names,
 * never for secrets).
 */
export const makeSeeded = (seed: number): Generator => {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x9e3779b9) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  return fromBytes((count) => Uint8Array.from({ length: count }, () => next() & 0xff))
}

export const Ids = Context.Reference<Generator>("@testbed/events/Ids", { defaultValue: makeLive })
export type Ids = typeof Ids

/** The live generator, explicitly (it is also the default when no layer provides one). */
export const layer: Layer.Layer<never> = Layer.succeed(Ids, makeLive())

/** A seeded generator for tests: every id of the run is the same from one run to the next. */
export const layerTest = (seed = 1): Layer.Layer<never> => Layer.sync(Ids, () => makeSeeded(seed))

/** A fresh unique id from the generator in context: `<prefix>-<tag>-<n>`. */
export const unique = (prefix: string): Effect.Effect<string> => Effect.map(Ids, (ids) => ids.unique(prefix))

/** `length` random characters of `[0-9a-z]` from the generator in context. */
export const token = (length: number): Effect.Effect<string> => Effect.map(Ids, (ids) => ids.token(length))
