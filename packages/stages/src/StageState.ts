/**
 * The record of which stage is up (`.testbed/stage.json`): written atomically (temp file + rename) and only
 * after `up` succeeded, so a failed `up` never leaves a stage recorded. It also keeps the host settings'
 * earlier values, so `down` in another process restores them.
 */
import { createHash } from "node:crypto"
import { Effect, FileSystem, Option, Path, Schema } from "effect"
import * as Impairment from "./Impairment.ts"
import { StateFileFailed } from "./StageError.ts"

export const Restore = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("sysctl"), key: Schema.String, previous: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("arp"), interface: Schema.String, previous: Schema.Boolean })
])
export type Restore = typeof Restore.Type

export const Current = Schema.Struct({
  name: Schema.String,
  runId: Schema.String,
  namespace: Schema.String,
  source: Schema.String,
  startedAt: Schema.String,
  hostRestore: Schema.Array(Restore),
  /** The instance (`--instance NAME`) and its block of the stage's pool; absent for the project's one stage. */
  instance: Schema.optionalKey(Schema.String),
  slot: Schema.optionalKey(Schema.Int),
  /** Impairments in force, by `NODE:IFACE`, as last set (from the file at up, or live). */
  impairments: Schema.optionalKey(Schema.Record(Schema.String, Impairment.Settings))
})
export type Current = typeof Current.Type

const CurrentJson = Schema.fromJsonString(Current)

/** Resources of one project (one state directory) carry its namespace, so projects never prune each other. */
export const namespaceOf = (stateDir: string): string =>
  createHash("sha256").update(stateDir).digest("hex").slice(0, 12)

const fileOf = (path: Path.Path, stateDir: string) => path.join(stateDir, "stage.json")

export const read = Effect.fn("StageState.read")(function* (stateDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const file = fileOf(path, stateDir)
  const fail = (reason: string) => new StateFileFailed({ path: file, reason })
  if (!(yield* fs.exists(file).pipe(Effect.mapError((e) => fail(e.message))))) return Option.none<Current>()
  const text = yield* fs.readFileString(file).pipe(Effect.mapError((e) => fail(e.message)))
  const current = yield* Schema.decodeUnknownEffect(CurrentJson)(text).pipe(
    Effect.mapError((e) => fail(`unreadable (${e.message}); remove it and run \`testbed stage prune\``))
  )
  return Option.some(current)
})

export const write = Effect.fn("StageState.write")(function* (stateDir: string, current: Current) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const file = fileOf(path, stateDir)
  const temp = `${file}.${current.runId}.tmp`
  const fail = (e: { readonly message: string }) => new StateFileFailed({ path: file, reason: e.message })
  yield* fs.makeDirectory(stateDir, { recursive: true }).pipe(Effect.mapError(fail))
  const text = yield* Schema.encodeEffect(CurrentJson)(current).pipe(Effect.mapError(fail))
  yield* fs.writeFileString(temp, `${text}\n`).pipe(Effect.mapError(fail))
  yield* fs.rename(temp, file).pipe(Effect.mapError(fail))
})

export const clear = Effect.fn("StageState.clear")(function* (stateDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const file = fileOf(path, stateDir)
  yield* fs
    .remove(file, { force: true })
    .pipe(Effect.mapError((e) => new StateFileFailed({ path: file, reason: e.message })))
})
