// Runs NDS actions without a socket (the client's bytes are a fixed buffer, the answer is collected), and the
// layer that loads and replays NDS scripts.
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { LocalRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Effect, Layer, Result } from "effect"
import {
  type ActionArg,
  type ActionIO,
  type ActionModule,
  ActionRegistry,
  makeConnectionState,
  type PreparedAction
} from "../src/Action.ts"
import { BlobStore } from "../src/BlobStore.ts"
import { module as nds1 } from "../src/nds/Nds1.ts"
import { module as nds2 } from "../src/nds/Nds2.ts"
import { ActionFailed, type ReplayFailure, ScriptMismatch, ScriptNotExhausted } from "../src/ReplayError.ts"
import * as ScriptLoader from "../src/ScriptLoader.ts"

export type Call = readonly [action: string, args: ReadonlyArray<ActionArg>]

/** Prepares every call as the loader would; the first refusal is the failure, prefixed by its index. */
export const prepare = (
  module: ActionModule,
  calls: ReadonlyArray<Call>
): Result.Result<ReadonlyArray<PreparedAction>, string> => {
  const prepared: Array<PreparedAction> = []
  for (let i = 0; i < calls.length; i++) {
    const [action, args] = calls[i]!
    const result = module.prepare(action, args)
    if (Result.isFailure(result)) return Result.fail(`${i}: ${result.failure}`)
    prepared.push(result.success)
  }
  return Result.succeed(prepared)
}

/** The refusal message of a call that should not load. */
export const refusal = (module: ActionModule, action: string, args: ReadonlyArray<ActionArg>): string => {
  const result = module.prepare(action, args)
  return Result.isFailure(result) ? result.failure : "(accepted)"
}

/**
 * Runs the calls on one fresh connection whose client sent `input`; succeeds with what the actions wrote and
 * the client bytes left unread.
 */
export const run = (module: ActionModule, calls: ReadonlyArray<Call>, input: Uint8Array | string = "") =>
  Effect.gen(function* () {
    const prepared = prepare(module, calls)
    if (Result.isFailure(prepared)) return yield* Effect.die(new Error(`the calls do not load: ${prepared.failure}`))
    const state = makeConnectionState()
    let pending = typeof input === "string" ? new Uint8Array(Buffer.from(input)) : input
    const written: Array<Uint8Array> = []
    for (let i = 0; i < calls.length; i++) {
      const step = `calls[${i}]`
      const ended = (offset: number) =>
        new ScriptNotExhausted({
          connection: 0,
          step,
          offset,
          remainingSteps: calls.length - i,
          reason: "the client closed the connection"
        })
      const take = (n: number) => {
        const bytes = pending.subarray(0, n)
        pending = pending.subarray(n)
        return bytes
      }
      const io: ActionIO = {
        connection: 0,
        step,
        expect: (expected) =>
          Effect.suspend((): Effect.Effect<void, ReplayFailure> => {
            const want = typeof expected === "string" ? new Uint8Array(Buffer.from(expected)) : expected
            for (let k = 0; k < want.length; k++) {
              if (k >= pending.length) return Effect.fail(ended(k))
              if (pending[k] !== want[k]) {
                return Effect.fail(
                  new ScriptMismatch({ connection: 0, step, offset: k, expected: want, received: pending })
                )
              }
            }
            take(want.length)
            return Effect.void
          }),
        readLine: Effect.suspend(() => {
          const end = pending.indexOf(0x0a)
          return end < 0 ? Effect.fail(ended(pending.length)) : Effect.succeed(take(end + 1))
        }),
        readBytes: (n) =>
          Effect.suspend(() => (pending.length < n ? Effect.fail(ended(pending.length)) : Effect.succeed(take(n)))),
        write: (bytes) =>
          Effect.sync(() => void written.push(typeof bytes === "string" ? new Uint8Array(Buffer.from(bytes)) : bytes)),
        fail: (reason) => Effect.fail(new ActionFailed({ connection: 0, step, action: calls[i]![0], reason }))
      }
      yield* prepared.success[i]!.run(io, state) as Effect.Effect<void, ReplayFailure>
    }
    return { output: Buffer.concat(written).toString("hex"), unread: Buffer.from(pending).toString("hex") }
  })

/** Hex from a literal written in groups, one field per group: `"00000010 ffffffff"` → `"00000010ffffffff"`. */
export const hex = (...groups: ReadonlyArray<string>): string => groups.join("").replace(/\s+/g, "")

/** The hex of ASCII text, for the text parts of an answer. */
export const ascii = (s: string): string => Buffer.from(s, "latin1").toString("hex")

export const repo = Path.resolve(import.meta.dirname, "../../..")
export const fixtures = Path.join(repo, "fixtures/replay")

/** What loading and replaying an NDS script needs: both modules, blobs beside the fixtures, a command runner. */
export const layer = Layer.mergeAll(
  ActionRegistry.layer([nds1, nds2]),
  BlobStore.layer({ dir: Path.join(fixtures, "blobs") }),
  LocalRunner.layer.pipe(Layer.provide(EventBus.EventBus.layer))
).pipe(Layer.provideMerge(NodeServices.layer))

export const load = (file: string, options: { readonly moduleChecks?: boolean } = {}) =>
  ScriptLoader.load({ file, ...options })
