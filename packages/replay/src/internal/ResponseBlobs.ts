// The blobs a script's responses name, opened once per load (or once for all entries of `replay check`). Small
// ones are kept in memory for fast serving, within a budget; the rest are served from their files as streams,
// so a script with a 1 GB blob loads and serves in bounded memory.
import { Effect } from "effect"
import type { Blob, BlobError, BlobStore } from "../BlobStore.ts"

/** A blob up to this size is kept in memory (while the budget lasts). */
export const keepBytes = 8 * 1024 * 1024
/** All blobs kept in memory by one load, together. */
export const budgetBytes = 64 * 1024 * 1024
/** The largest response an action gets as an argument (actions take bytes, not streams). */
export const maxActionBytes = 64 * 1024 * 1024

export interface ResponseBlobs {
  /** The blob, kept in memory when it is small enough and the budget allows. */
  readonly response: (name: string) => Effect.Effect<Blob, BlobError>
  /** The blob's bytes for an action, or undefined when it is larger than `maxActionBytes`. */
  readonly bytes: (
    name: string
  ) => Effect.Effect<{ readonly blob: Blob; readonly bytes: Uint8Array | undefined }, BlobError>
  /** Every blob opened so far. */
  readonly opened: () => ReadonlyArray<Blob>
}

export const make = (store: BlobStore["Service"]): ResponseBlobs => {
  const blobs = new Map<string, Blob>()
  let kept = 0
  const response = (name: string) =>
    Effect.suspend(() => {
      const cached = blobs.get(name)
      if (cached !== undefined) return Effect.succeed(cached)
      return Effect.tap(store.open(name, { keepInMemory: Math.min(keepBytes, budgetBytes - kept) }), (blob) =>
        Effect.sync(() => {
          blobs.set(name, blob)
          if (blob.bytes !== undefined) kept += blob.size
        })
      )
    })
  const bytes = (name: string) =>
    Effect.flatMap(response(name), (blob) => {
      if (blob.bytes !== undefined || blob.size > maxActionBytes) return Effect.succeed({ blob, bytes: blob.bytes })
      // Read again to hand it over; not cached, so it does not count against the serving budget.
      return Effect.map(store.open(name, { keepInMemory: maxActionBytes }), (again) => ({ blob, bytes: again.bytes }))
    })
  return { response, bytes, opened: () => [...blobs.values()] }
}
