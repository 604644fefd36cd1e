/**
 * A runner's bundles: `<workdir>/bundles/<sha256>/` holds one bundle's files (`files/`) and header
 * (`header.json`). The first attempt that needs a bundle fetches it from Postgres (riding out an outage shorter
 * than the lock expiry, see `internal/bundleStore.ts`), checks its sha256 and entries, unpacks it in a directory of
 * its own and renames that into place (two attempts unpacking at once: the second rename loses and its copy is
 * removed); later attempts use the cache. The cache is bounded (`--bundle-cache`): after an unpack, the least
 * recently used bundles (by the directory's mtime, set on every use) that no attempt of this runner uses are
 * removed until the files of those kept fit, and once at the runner's start (`atStart`, which also removes the
 * unpacks a killed runner left). A request without a bundle (from an older coordinator's journal) runs the
 * experiment at the path the coordinator gave, as before bundles.
 */
import { randomBytes } from "node:crypto"
import { Clock, Duration, Effect, FileSystem, Option, Path, Schema, Semaphore } from "effect"
import * as Bundle from "./Bundle.ts"
import * as BundleStore from "./internal/bundleStore.ts"

/** Bytes of a stored bundle a runner accepts by default (`--bundle-limit`). */
export const defaultMaxBytes = 256 * 1024 * 1024
/** Bytes of bundle files a runner's cache keeps by default (`--bundle-cache`). */
export const defaultMaxCacheBytes = 2048 * 1024 * 1024

export interface Options {
  readonly workdir: string
  /** Bytes of a stored bundle this runner fetches at most. */
  readonly maxBytes: number
  /** Bytes of unpacked files the cache keeps at most, unless attempts running now use more. */
  readonly maxCacheBytes: number
  /** How long a fetch rides out a Postgres outage (the lock expiry). */
  readonly outageBudget: Duration.Duration
}

/** One runner's cache: its options and the bundles its attempts use now (never evicted). */
export interface Cache {
  readonly options: Options
  /** sha256 → attempts using it. */
  readonly inUse: Map<string, number>
  /**
   * Taken to mark a bundle used and find it in the cache, and to check a bundle unused and rename it away: an
   * attempt never finds a bundle that an eviction is removing.
   */
  readonly lock: Semaphore.Semaphore
}

export const make = (options: Partial<Options> & { readonly workdir: string }): Cache => ({
  options: {
    maxBytes: defaultMaxBytes,
    maxCacheBytes: defaultMaxCacheBytes,
    outageBudget: Duration.seconds(15),
    ...options
  },
  inUse: new Map(),
  lock: Semaphore.makeUnsafe(1)
})

/** Where an attempt finds its experiment on this runner. */
export interface Located {
  readonly file: string
  readonly pluginDirectories: ReadonlyArray<string>
  readonly experimentDir: string
  /** Turns this runner's paths of the experiment in an event line into the coordinator's. */
  readonly rewrite: (line: string) => string
}

const decodeHeader = Schema.decodeUnknownEffect(Schema.fromJsonString(Bundle.Header))

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/** Marks the bundle used until the scope closes: eviction leaves it alone. */
const hold = (cache: Cache, sha: string) =>
  Effect.acquireRelease(
    Effect.sync(() => void cache.inUse.set(sha, (cache.inUse.get(sha) ?? 0) + 1)),
    () =>
      Effect.sync(() => {
        const left = (cache.inUse.get(sha) ?? 1) - 1
        if (left === 0) cache.inUse.delete(sha)
        else cache.inUse.set(sha, left)
      })
  )

/** The bundle's header, if it is unpacked in the cache. */
const cachedHeader = Effect.fnUntraced(function* (dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const text = yield* Effect.option(fs.readFileString(path.join(dir, "header.json")))
  return Option.isSome(text) ? yield* Effect.option(decodeHeader(text.value)) : Option.none<Bundle.Header>()
})

/**
 * The bundle unpacked in this runner's cache (fetched first if it is not there), held for the caller's scope: no
 * eviction removes it while the attempt runs.
 */
export const unpacked = Effect.fn("BundleCache.unpacked")(function* (cache: Cache, sha: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  // Signed, but it still becomes a directory name: only a sha256 may.
  if (!/^[0-9a-f]{64}$/.test(sha)) return yield* new Bundle.BundleCorrupt({ sha256: sha, reason: "not a sha256" })
  const root = path.resolve(cache.options.workdir, "bundles")
  const dir = path.join(root, sha)
  const cached = yield* cache.lock.withPermit(Effect.andThen(hold(cache, sha), cachedHeader(dir)))
  if (Option.isSome(cached)) {
    // Its mtime is when it was last used: what eviction goes by.
    const now = new Date(yield* Clock.currentTimeMillis)
    yield* Effect.ignore(fs.utimes(dir, now, now))
    return { dir: path.join(dir, "files"), header: cached.value }
  }
  const bytes = yield* BundleStore.get(sha, cache.options.maxBytes, cache.options.outageBudget)
  const opened = yield* Bundle.open(sha, bytes, cache.options.maxBytes)
  const temporary = path.join(root, `.unpacking-${randomBytes(6).toString("hex")}`)
  yield* Effect.gen(function* () {
    yield* Bundle.extract(sha, opened, path.join(temporary, "files"))
    yield* fs.writeFileString(path.join(temporary, "header.json"), JSON.stringify(opened.header))
    // Fails when another attempt put its copy there first: that one is used.
    yield* fs.rename(temporary, dir).pipe(Effect.catch(() => Effect.void))
  }).pipe(Effect.ensuring(Effect.ignore(fs.remove(temporary, { recursive: true, force: true }))))
  yield* evict(cache)
  return { dir: path.join(dir, "files"), header: opened.header }
})

/** The cache's bundles among the `names` in `root`: size of their files and when last used. */
const inventory = Effect.fnUntraced(function* (root: string, names: ReadonlyArray<string>) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const found: Array<{ readonly sha: string; readonly bytes: number; readonly usedAt: number }> = []
  for (const sha of names.filter((name) => /^[0-9a-f]{64}$/.test(name))) {
    const info = yield* Effect.option(fs.stat(path.join(root, sha)))
    if (Option.isNone(info)) continue
    const header = yield* cachedHeader(path.join(root, sha))
    const bytes = Option.match(header, {
      // No header: not one this cache put there whole (a rename puts both at once); nothing to count.
      onNone: () => 0,
      onSome: (value) => value.entries.reduce((sum, entry) => sum + entry.size, 0)
    })
    found.push({ sha, bytes, usedAt: Option.getOrElse(Option.map(info.value.mtime, Number), () => 0) })
  }
  return found
})

/**
 * Removes the least recently used bundles no attempt uses until the files of those kept fit the cache's bound.
 * Each goes by a rename first, so no reader ever sees half a bundle. Logs what it removed, and a cache that stays
 * over its bound because attempts use it.
 */
export const evict = Effect.fn("BundleCache.evict")(function* (cache: Cache) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const root = path.resolve(cache.options.workdir, "bundles")
  const names = yield* fs.readDirectory(root).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
  const bundles = yield* inventory(root, names)
  // What an eviction cut short (the runner killed between its rename and its removal) goes now.
  for (const name of names.filter((entry) => entry.startsWith(".evicting-"))) {
    yield* Effect.ignore(fs.remove(path.join(root, name), { recursive: true, force: true }))
  }
  let total = bundles.reduce((sum, bundle) => sum + bundle.bytes, 0)
  const max = cache.options.maxCacheBytes
  const candidates = bundles.filter((bundle) => !cache.inUse.has(bundle.sha)).sort((a, b) => a.usedAt - b.usedAt)
  const evicted: Array<string> = []
  for (const bundle of candidates) {
    if (total <= max) break
    const doomed = path.join(root, `.evicting-${randomBytes(6).toString("hex")}`)
    const moved = yield* cache.lock.withPermit(
      Effect.suspend(() =>
        // An attempt may have taken it since the inventory.
        cache.inUse.has(bundle.sha)
          ? Effect.succeed(false)
          : Effect.map(
              Effect.result(fs.rename(path.join(root, bundle.sha), doomed)),
              (moved) => moved._tag === "Success"
            )
      )
    )
    // In use now, or gone already (another attempt's eviction): nothing to count.
    if (!moved) continue
    yield* Effect.ignore(fs.remove(doomed, { recursive: true, force: true }))
    total -= bundle.bytes
    evicted.push(bundle.sha)
    yield* Effect.logInfo(
      `bundle cache: evicted ${bundle.sha.slice(0, 12)} (${mib(bundle.bytes)}, last used ${new Date(bundle.usedAt).toISOString()})`
    )
  }
  if (total > max) {
    yield* Effect.logWarning(
      `bundle cache: ${mib(total)} kept, over its bound of ${mib(max)} (--bundle-cache): running attempts use the rest`
    )
  }
  return evicted
})

/**
 * Run once when the runner starts, before it takes work: removes the unpacks a runner killed mid-unpack left in the
 * work directory (`.unpacking-*`: only at start, when no attempt of this runner can be unpacking; one runner per
 * work directory), and evicts down to the cache's bound, so a runner restarted with a smaller `--bundle-cache`
 * shrinks its cache before its first unpack. Returns the bundles evicted.
 */
export const atStart = Effect.fn("BundleCache.atStart")(function* (cache: Cache) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const root = path.resolve(cache.options.workdir, "bundles")
  const names = yield* fs.readDirectory(root).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
  for (const name of names.filter((entry) => entry.startsWith(".unpacking-"))) {
    yield* Effect.ignore(fs.remove(path.join(root, name), { recursive: true, force: true }))
    yield* Effect.logInfo(`bundle cache: removed ${name}, left by a runner stopped while it unpacked`)
  }
  return yield* evict(cache)
})

/** Where the request's experiment is on this runner: its bundle unpacked, or the coordinator's path. */
export const locate = Effect.fn("BundleCache.locate")(function* (
  cache: Cache,
  request: { readonly file: string; readonly pluginDirectories: ReadonlyArray<string>; readonly bundle?: string }
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
  const { dir, header } = yield* unpacked(cache, request.bundle)
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
