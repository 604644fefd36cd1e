/**
 * A loaded script, compiled for replay: names resolved, externals and blobs read, actions validated, the tree
 * flattened into the list of steps each connection runs.
 */
import type { Duration } from "effect"
import type { PreparedAction } from "./Action.ts"
import type { Blob } from "./BlobStore.ts"
import type { Fault } from "./Fault.ts"

/**
 * What a step sends: bytes in memory, or a blob too large to keep there, read from its file (and inflated) for
 * each connection that gets it.
 */
export type Response = Uint8Array | Blob

export const responseSize = (response: Response): number =>
  response instanceof Uint8Array ? response.length : response.size

export type Step =
  /** Expect `command` from the client, then send `response`. */
  | {
      readonly _tag: "Exchange"
      readonly path: string
      readonly command: Uint8Array
      readonly response: Response
      readonly fault: Fault | undefined
    }
  | { readonly _tag: "Sleep"; readonly path: string; readonly duration: Duration.Duration }
  | { readonly _tag: "Action"; readonly path: string; readonly action: string; readonly prepared: PreparedAction }

/** One script served to every connection, or (compound_multi) the k-th script to the k-th connection. */
export type Plan =
  | { readonly _tag: "Single"; readonly steps: ReadonlyArray<Step> }
  | { readonly _tag: "Multi"; readonly connections: ReadonlyArray<ReadonlyArray<Step>> }

export interface Stats {
  readonly connections: number | "any"
  readonly exchanges: number
  readonly actions: number
  readonly sleeps: number
  readonly commandBytes: number
  readonly responseBytes: number
}

export const stats = (plan: Plan): Stats => {
  const lists = plan._tag === "Single" ? [plan.steps] : plan.connections
  let exchanges = 0
  let actions = 0
  let sleeps = 0
  let commandBytes = 0
  let responseBytes = 0
  for (const steps of lists) {
    for (const step of steps) {
      if (step._tag === "Exchange") {
        exchanges++
        commandBytes += step.command.length
        responseBytes += responseSize(step.response)
      } else if (step._tag === "Action") actions++
      else sleeps++
    }
  }
  return {
    connections: plan._tag === "Single" ? "any" : plan.connections.length,
    exchanges,
    actions,
    sleeps,
    commandBytes,
    responseBytes
  }
}
