/**
 * A script as a user names it: the file, the entry to run, where its blobs are (and the remote cache), the root
 * its externals must stay in, and what it may load. `load` and `check` provide the blob store and the built-in
 * action modules (nds1, nds2) themselves: what `testbed replay serve|test|check` and other callers share.
 */
import * as Path from "node:path"
import { Effect, Layer } from "effect"
import { type ActionModule, ActionRegistry } from "./Action.ts"
import { BlobStore } from "./BlobStore.ts"
import * as CheckReport from "./CheckReport.ts"
import * as Nds1 from "./nds/Nds1.ts"
import * as Nds2 from "./nds/Nds2.ts"
import * as ScriptLoader from "./ScriptLoader.ts"

export interface ScriptSource {
  readonly file: string
  /** The entry to run; `recorded_script` by default. */
  readonly name?: string | undefined
  /** The blob directory; `blobs/` beside the file by default. */
  readonly blobs?: string | undefined
  /** The remote blob cache (a directory or an http(s) URL); `$REPLAY_BLOB_REMOTE_CACHE` by default. */
  readonly blobCache?: string | undefined
  /** Externals must stay inside this directory; the file's directory by default. */
  readonly root?: string | undefined
  readonly allowOutsideRoot?: boolean | undefined
  /** Lets `import` load an action module from a file path. */
  readonly allowModulePaths?: boolean | undefined
  /** The modules `import` may name; the built-in ones (nds1, nds2) by default. */
  readonly modules?: ReadonlyArray<ActionModule> | undefined
}

/** The action modules testbed ships: the older tool's `nds1` and `nds2`. */
export const builtinModules: ReadonlyArray<ActionModule> = [Nds1.module, Nds2.module]

/** The blob store and action registry a source loads with. */
export const layer = (source: ScriptSource) =>
  Layer.merge(
    BlobStore.layer({
      dir: source.blobs ?? Path.join(Path.dirname(source.file), "blobs"),
      remote: source.blobCache ?? process.env.REPLAY_BLOB_REMOTE_CACHE
    }),
    ActionRegistry.layer(source.modules ?? builtinModules)
  )

const loadOptions = (source: ScriptSource) => ({
  file: source.file,
  root: source.root,
  allowOutsideRoot: source.allowOutsideRoot,
  allowModulePaths: source.allowModulePaths
})

/** Loads the source's entry for replay. */
export const load = Effect.fn("ScriptSource.load")(function* (source: ScriptSource) {
  return yield* ScriptLoader.load({ ...loadOptions(source), name: source.name }).pipe(Effect.provide(layer(source)))
})

const loadEvery = (source: ScriptSource) =>
  ScriptLoader.loadAll({ ...loadOptions(source), moduleChecksOn: source.name }).pipe(Effect.provide(layer(source)))

/** Loads every entry of the file (a broken unused entry is an error too) and describes it, line by line. */
export const check = Effect.fn("ScriptSource.check")(function* (source: ScriptSource) {
  return CheckReport.lines(source.file, yield* loadEvery(source))
})

/** `check` as one JSON value (`replay check --json`). */
export const checkSummary = Effect.fn("ScriptSource.checkSummary")(function* (source: ScriptSource) {
  return CheckReport.summary(source.file, yield* loadEvery(source))
})
