/**
 * A runner's bundles: `<workdir>/bundles/<sha256>/` holds one bundle's files (`files/`) and header
 * (`header.json`). The first attempt that needs a bundle fetches it from Postgres, checks its sha256 and entries,
 * unpacks it in a directory of its own and renames that into place (two attempts unpacking at once: the second
 * rename loses and its copy is removed); later attempts use the cache. A request without a bundle (from an older
 * coordinator's journal) runs the experiment at the path the coordinator gave, as before bundles.
 */
import { randomBytes } from "node:crypto"
import { Effect, FileSystem, Path, Schema } from "effect"
import * as Bundle from "./Bundle.ts"
import * as BundleStore from "./internal/bundleStore.ts"

/** Bytes of a stored bundle a runner accepts by default. */
export const defaultMaxBytes = 256 * 1024 * 1024

/** Where an attempt finds its experiment on this runner. */
export interface Located {
  readonly file: string
  readonly pluginDirectories: ReadonlyArray<string>
  readonly experimentDir: string
  /** Turns this runner's paths of the experiment in an event line into the coordinator's. */
  readonly rewrite: (line: string) => string
}

const decodeHeader = Schema.decodeUnknownEffect(Schema.fromJsonString(Bundle.Header))

/** The bundle unpacked in this runner's cache (fetched first if it is not there). */
export const unpacked = Effect.fn("BundleCache.unpacked")(function* (workdir: string, sha: string, maxBytes: number) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  // Signed, but it still becomes a directory name: only a sha256 may.
  if (!/^[0-9a-f]{64}$/.test(sha)) return yield* new Bundle.BundleCorrupt({ sha256: sha, reason: "not a sha256" })
  const cache = path.resolve(workdir, "bundles")
  const dir = path.join(cache, sha)
  const cached = yield* fs.readFileString(path.join(dir, "header.json")).pipe(Effect.option)
  if (cached._tag === "Some") {
    const header = yield* decodeHeader(cached.value).pipe(Effect.option)
    if (header._tag === "Some") return { dir: path.join(dir, "files"), header: header.value }
  }
  const bytes = yield* BundleStore.get(sha, maxBytes)
  const opened = yield* Bundle.open(sha, bytes, maxBytes)
  const temporary = path.join(cache, `.unpacking-${randomBytes(6).toString("hex")}`)
  yield* Effect.gen(function* () {
    yield* Bundle.extract(sha, opened, path.join(temporary, "files"))
    yield* fs.writeFileString(path.join(temporary, "header.json"), JSON.stringify(opened.header))
    // Fails when another attempt put its copy there first: that one is used.
    yield* fs.rename(temporary, dir).pipe(Effect.catch(() => Effect.void))
  }).pipe(Effect.ensuring(Effect.ignore(fs.remove(temporary, { recursive: true, force: true }))))
  return { dir: path.join(dir, "files"), header: opened.header }
})

/** Where the request's experiment is on this runner: its bundle unpacked, or the coordinator's path. */
export const locate = Effect.fn("BundleCache.locate")(function* (
  workdir: string,
  request: { readonly file: string; readonly pluginDirectories: ReadonlyArray<string>; readonly bundle?: string },
  maxBytes: number
) {
  const path = yield* Path.Path
  if (request.bundle === undefined) {
    return {
      file: request.file,
      pluginDirectories: request.pluginDirectories,
      experimentDir: path.dirname(request.file),
      rewrite: (line) => line
    } satisfies Located
  }
  const { dir, header } = yield* unpacked(workdir, request.bundle, maxBytes)
  const file = path.join(dir, header.experiment)
  const here = JSON.stringify(path.dirname(file)).slice(1, -1)
  const there = JSON.stringify(path.dirname(request.file)).slice(1, -1)
  return {
    file,
    pluginDirectories: header.plugins.map((plugin) => path.join(dir, plugin)),
    experimentDir: path.dirname(file),
    rewrite: (line) => line.replaceAll(here, there)
  } satisfies Located
})
