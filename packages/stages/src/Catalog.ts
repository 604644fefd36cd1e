/**
 * A directory of stages: `<catalog>/<name>/stage.yaml` (or a compose file in its place). A stage is named by
 * a validated name (never a path into or out of the catalog) or given explicitly as an existing path.
 */
import { Effect, FileSystem, Path } from "effect"
import * as Compose from "./Compose.ts"
import * as Stage from "./Stage.ts"
import { type InvalidStageName, type StageInvalid, StageNotFound } from "./StageError.ts"

export const stageFiles = ["stage.yaml", "stage.yml"] as const
export const composeFiles = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"] as const

export interface Entry {
  readonly name: string
  readonly kind: "stage" | "compose"
  readonly file: string
}

const definitionIn = Effect.fn("Catalog.definitionIn")(function* (dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  for (const name of [...stageFiles, ...composeFiles]) {
    const file = path.join(dir, name)
    if (yield* fs.exists(file).pipe(Effect.orElseSucceed(() => false))) {
      return { file, kind: (stageFiles as ReadonlyArray<string>).includes(name) ? "stage" : "compose" } as const
    }
  }
  return undefined
})

/** The stages of a catalog directory, by name; folders without a definition or with an invalid name are skipped. */
export const list = Effect.fn("Catalog.list")(function* (catalog: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  if (!(yield* fs.exists(catalog).pipe(Effect.orElseSucceed(() => false)))) return [] as ReadonlyArray<Entry>
  const names = yield* fs.readDirectory(catalog).pipe(Effect.orElseSucceed(() => [] as Array<string>))
  const entries: Array<Entry> = []
  for (const name of names.sort()) {
    if (!Stage.isValidName(name)) continue
    const found = yield* definitionIn(path.join(catalog, name))
    if (found) entries.push({ name, ...found })
  }
  return entries as ReadonlyArray<Entry>
})

/** Loads one definition file: stage YAML, or a compose file named like one. */
export const loadFile = Effect.fn("Catalog.loadFile")(function* (file: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const absolute = path.resolve(file)
  const baseDir = path.dirname(absolute)
  if (path.basename(absolute).includes("compose")) return yield* Compose.load(absolute, path.basename(baseDir))
  const text = yield* fs
    .readFileString(absolute)
    .pipe(Effect.mapError(() => new StageNotFound({ name: file, looked: [absolute] })))
  const stage = yield* Stage.decodeYaml(text, absolute)
  return { stage, source: absolute, baseDir } satisfies Stage.Loaded
})

const looksLikePath = (ref: string) => ref.includes("/") || ref.includes("\\") || ref.startsWith(".")

/**
 * Resolves what the user typed: an existing path (file or folder) when it looks like one, otherwise a validated
 * name looked up in the catalog. `../x` that does not exist is rejected as a name, never looked up.
 */
export const load = Effect.fn("Catalog.load")(function* (ref: string, catalog: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const exists = (p: string) => fs.exists(p).pipe(Effect.orElseSucceed(() => false))
  if (looksLikePath(ref) && (yield* exists(ref))) {
    const info = yield* fs.stat(ref).pipe(Effect.mapError(() => new StageNotFound({ name: ref, looked: [ref] })))
    if (info.type !== "Directory") return yield* loadFile(ref)
    const found = yield* definitionIn(ref)
    if (!found) {
      return yield* new StageNotFound({
        name: ref,
        looked: [...stageFiles, ...composeFiles].map((f) => path.join(ref, f))
      })
    }
    return yield* loadFile(found.file)
  }
  const name = yield* Stage.validateName(ref)
  const dir = path.join(catalog, name)
  const found = yield* definitionIn(dir)
  if (!found) return yield* new StageNotFound({ name, looked: [path.resolve(dir)] })
  return yield* loadFile(found.file)
})

export type LoadError = InvalidStageName | StageNotFound | StageInvalid | Compose.LoadError
