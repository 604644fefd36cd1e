/**
 * Large or binary responses live beside the scripts as `blobs/<sha1>` or `blobs/<sha1>.gz`, named by the sha1
 * of the uncompressed bytes (verified on every load). Legacy names ending in `_c<digits>` are CRC names of the
 * oldest recordings and are accepted unverified. Missing blobs are fetched from a remote cache (a directory or
 * an http(s) URL), verified, and kept locally. Blobs are verified and read as streams: memory stays bounded
 * whatever their size (only blobs the caller asks to keep, up to a size it gives, are held in memory).
 */
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { Context, Duration, Effect, FileSystem, Layer, Option, Runtime, Schema, Stream } from "effect"
import * as BlobFile from "./internal/BlobFile.ts"
import * as RemoteCache from "./internal/RemoteCache.ts"
import { ExitCode } from "@testbed/events"

export const legacyName = /_c[0-9]+$/
const sha1Name = /^[0-9a-fA-F]{40}$/

export class BlobNameInvalid extends Schema.TaggedError<BlobNameInvalid>()("BlobNameInvalid", {
  name: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `invalid blob name "${this.name}": expected 40 hex digits (sha1) or a legacy name ending in _c<digits>`
  }
}

export class BlobNotFound extends Schema.TaggedError<BlobNotFound>()("BlobNotFound", {
  name: Schema.String,
  searched: Schema.Array(Schema.String)
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `blob ${this.name} not found (looked in ${this.searched.join(", ")}); set REPLAY_BLOB_REMOTE_CACHE or --blob-cache`
  }
}

export class BlobCorrupt extends Schema.TaggedError<BlobCorrupt>()("BlobCorrupt", {
  name: Schema.String,
  location: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `blob ${this.name} at ${this.location} is corrupt: ${this.reason}`
  }
}

export class BlobFetchFailed extends Schema.TaggedError<BlobFetchFailed>()("BlobFetchFailed", {
  name: Schema.String,
  location: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot fetch blob ${this.name} from ${this.location}: ${this.reason}`
  }
}

export class BlobTooLarge extends Schema.TaggedError<BlobTooLarge>()("BlobTooLarge", {
  name: Schema.String,
  size: Schema.Int,
  limit: Schema.Int
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `blob ${this.name} is ${this.size} bytes, more than the ${this.limit} bytes that may be held in memory`
  }
}

export class BlobWriteFailed extends Schema.TaggedError<BlobWriteFailed>()("BlobWriteFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot write blob ${this.path}: ${this.reason}`
  }
}

export type BlobError = BlobNameInvalid | BlobNotFound | BlobCorrupt | BlobFetchFailed

export interface BlobStoreOptions {
  /** The local blob directory (`blobs/` beside the top-level script by default). */
  readonly dir: string
  /** Where missing blobs are fetched from: a directory or an http(s) URL. */
  readonly remote?: string | undefined
  /** An http(s) cache that sends nothing (no answer, or no body data) for this long fails. Default 30 seconds. */
  readonly remoteIdleTimeout?: Duration.Input | undefined
}

/** A verified (or, for a legacy name, accepted) blob in the local store. */
export interface Blob {
  readonly name: string
  /** Uncompressed bytes. */
  readonly size: number
  /** False for a legacy CRC name (`_c<digits>`): its content was accepted unverified. */
  readonly verified: boolean
  readonly location: string
  /** The content, when the caller asked to keep blobs of this size in memory (`open`'s `keepInMemory`). */
  readonly bytes: Uint8Array | undefined
  /** The content read again from its file, in chunks; BlobCorrupt if the file changed since it was verified. */
  readonly stream: Stream.Stream<Uint8Array, BlobCorrupt>
}

export interface OpenOptions {
  /** Keep the content in memory (`Blob.bytes`) when it is at most this many bytes. Default 0: never. */
  readonly keepInMemory?: number | undefined
}

/** The most `get` holds in memory; larger blobs are read with `open(…).stream`. */
export const maxGetBytes = 64 * 1024 * 1024

export const sha1 = (bytes: Uint8Array): string => Crypto.createHash("sha1").update(bytes).digest("hex")

const gzip = (bytes: Uint8Array) =>
  Effect.callback<Uint8Array, string>((resume) => {
    Zlib.gzip(bytes, (error, out) => resume(error ? Effect.fail(error.message) : Effect.succeed(out)))
  })

export class BlobStore extends Context.Service<
  BlobStore,
  {
    readonly dir: string
    /** Verifies a blob (one streaming pass) and describes it; its content is read with `stream`. */
    readonly open: (name: string, options?: OpenOptions) => Effect.Effect<Blob, BlobError>
    /** The uncompressed bytes of a blob, verified against its name; at most `maxGetBytes`. */
    readonly get: (name: string) => Effect.Effect<Uint8Array, BlobError | BlobTooLarge>
    /** Stores bytes as `<sha1>.gz` (temp file + rename, skipped when the blob exists) and returns the sha1. */
    readonly put: (bytes: Uint8Array) => Effect.Effect<string, BlobWriteFailed>
    /**
     * Stores the content of a raw file (streamed: sha1 and gzip in one pass) as `<sha1>.gz`, then removes the raw
     * file; returns the sha1. On failure the raw file is kept (it may be the only copy of a recording).
     */
    readonly putFile: (raw: string) => Effect.Effect<string, BlobWriteFailed>
    /** Whether the blob is available locally, without fetching it. */
    readonly hasLocal: (name: string) => Effect.Effect<boolean>
  }
>()("@testbed/replay/BlobStore") {
  static readonly layer = (options: BlobStoreOptions) => Layer.effect(BlobStore, make(options))

  /** The remote cache named by `$REPLAY_BLOB_REMOTE_CACHE`, as the older tools read it. */
  static readonly layerEnv = (dir: string) => BlobStore.layer({ dir, remote: process.env.REPLAY_BLOB_REMOTE_CACHE })
}

/** What the store's operations work with. */
interface Store {
  readonly fs: FileSystem.FileSystem
  readonly dir: string
  readonly remote: string | undefined
  readonly idleMs: number
}

const exists = (store: Store, path: string) => store.fs.exists(path).pipe(Effect.orElseSucceed(() => false))

/** Verifies the file at `location` against `name` in one pass; the Blob reads it again on demand. */
const verify = Effect.fn("BlobStore.verify")(function* (
  name: string,
  location: string,
  keep: number,
  compressed = location.endsWith(".gz")
) {
  const corrupt = (reason: string) => new BlobCorrupt({ name, location, reason })
  const before = yield* BlobFile.identity(location).pipe(Effect.mapError(corrupt))
  const scanned = yield* BlobFile.scan(location, compressed, keep).pipe(Effect.mapError(corrupt))
  const verified = !legacyName.test(name)
  if (verified && scanned.sha1 !== name.toLowerCase()) {
    return yield* corrupt(`sha1 of the content is ${scanned.sha1}`)
  }
  if ((yield* BlobFile.identity(location).pipe(Effect.mapError(corrupt))) !== before) {
    return yield* corrupt("the file changed while it was read")
  }
  const stream = Stream.unwrap(
    Effect.map(BlobFile.identity(location).pipe(Effect.mapError(corrupt)), (now) =>
      now === before
        ? Stream.mapError(BlobFile.read(location, compressed), corrupt)
        : Stream.fail(corrupt("the file changed since it was verified"))
    )
  )
  return { name, size: scanned.size, verified, location, bytes: scanned.bytes, stream } satisfies Blob
})

const findLocal = Effect.fn("BlobStore.findLocal")(function* (store: Store, name: string) {
  for (const location of [Path.join(store.dir, name), Path.join(store.dir, `${name}.gz`)]) {
    if (yield* exists(store, location)) return Option.some(location)
  }
  return Option.none<string>()
})

/** Verifies a fetched temp file (under the remote location's name) and renames it into the store. */
const keepFetched = Effect.fn("BlobStore.keepFetched")(function* (
  store: Store,
  name: string,
  fetched: RemoteCache.Fetched,
  keep: number
) {
  const { compressed, location, temp } = fetched
  const target = Path.join(store.dir, compressed ? `${name}.gz` : name)
  yield* verify(name, temp, 0, compressed).pipe(
    Effect.mapError((error) => new BlobCorrupt({ name, location, reason: error.reason }))
  )
  if (yield* exists(store, target)) yield* RemoteCache.remove(temp)
  else {
    yield* store.fs
      .rename(temp, target)
      .pipe(
        Effect.mapError((error) => new BlobFetchFailed({ name, location: store.remote ?? "", reason: error.message }))
      )
  }
  return yield* verify(name, target, keep)
})

/** Fetches into a temp file here, verifies it, and renames it into the store. */
const fetchRemote = Effect.fn("BlobStore.fetchRemote")(function* (
  store: Store,
  remote: string,
  name: string,
  keep: number
) {
  const failed = (reason: string) => new BlobFetchFailed({ name, location: remote, reason })
  yield* store.fs.makeDirectory(store.dir, { recursive: true }).pipe(Effect.mapError((error) => failed(error.message)))
  const temp = BlobFile.tempBeside(store.dir, name)
  const fetched = yield* RemoteCache.fetchInto(remote, name, temp, store.idleMs).pipe(Effect.mapError(failed))
  if (Option.isNone(fetched)) return Option.none<Blob>()
  return Option.some(
    yield* keepFetched(store, name, fetched.value, keep).pipe(Effect.onError(() => RemoteCache.remove(temp)))
  )
})

const open = Effect.fn("BlobStore.open")(function* (store: Store, name: string, openOptions: OpenOptions = {}) {
  if (!sha1Name.test(name) && !legacyName.test(name)) return yield* new BlobNameInvalid({ name })
  const keep = openOptions.keepInMemory ?? 0
  const local = yield* findLocal(store, name)
  if (Option.isSome(local)) return yield* verify(name, local.value, keep)
  const searched = [store.dir]
  if (store.remote !== undefined && store.remote !== "") {
    searched.push(store.remote)
    const remote = yield* fetchRemote(store, store.remote, name, keep)
    if (Option.isSome(remote)) return remote.value
  }
  return yield* new BlobNotFound({ name, searched })
})

const get = Effect.fn("BlobStore.get")(function* (store: Store, name: string) {
  const blob = yield* open(store, name, { keepInMemory: maxGetBytes })
  if (blob.bytes === undefined) return yield* new BlobTooLarge({ name, size: blob.size, limit: maxGetBytes })
  return blob.bytes
})

const writeFailed = (path: string) => (error: { readonly message: string } | string) =>
  new BlobWriteFailed({ path, reason: typeof error === "string" ? error : error.message })

/** Whether the blob is already stored (compressed or not). */
const stored = (store: Store, name: string) =>
  Effect.zipWith(
    exists(store, Path.join(store.dir, `${name}.gz`)),
    exists(store, Path.join(store.dir, name)),
    (gz, raw) => gz || raw
  )

/** Moves a finished temp file to `<name>.gz`, unless the blob is already there (then the temp goes). */
const settle = Effect.fn("BlobStore.settle")(function* (store: Store, temp: string, name: string) {
  const target = Path.join(store.dir, `${name}.gz`)
  if (yield* stored(store, name)) return yield* RemoteCache.remove(temp)
  yield* store.fs.rename(temp, target).pipe(Effect.mapError(writeFailed(target)))
})

const put = Effect.fn("BlobStore.put")(function* (store: Store, bytes: Uint8Array) {
  const name = sha1(bytes)
  const target = Path.join(store.dir, `${name}.gz`)
  if (yield* stored(store, name)) return name
  const temp = BlobFile.tempBeside(store.dir, name)
  yield* store.fs.makeDirectory(store.dir, { recursive: true }).pipe(
    Effect.andThen(Effect.flatMap(gzip(bytes), (compressed) => store.fs.writeFile(temp, compressed, { flag: "wx" }))),
    Effect.mapError(writeFailed(target)),
    Effect.andThen(settle(store, temp, name)),
    Effect.onError(() => RemoteCache.remove(temp))
  )
  return name
})

const putFile = Effect.fn("BlobStore.putFile")(function* (store: Store, raw: string) {
  const temp = BlobFile.tempBeside(store.dir, "blob")
  const name = yield* store.fs.makeDirectory(store.dir, { recursive: true }).pipe(
    Effect.mapError(writeFailed(store.dir)),
    Effect.andThen(BlobFile.gzipFile(raw, temp).pipe(Effect.mapError(writeFailed(`${temp} (from ${raw})`)))),
    Effect.tap((name) => settle(store, temp, name)),
    Effect.onError(() => RemoteCache.remove(temp))
  )
  yield* RemoteCache.remove(raw)
  return name
})

export const make = Effect.fn("BlobStore.make")(function* (options: BlobStoreOptions) {
  const store: Store = {
    fs: yield* FileSystem.FileSystem,
    dir: options.dir,
    remote: options.remote,
    idleMs: Duration.toMillis(Duration.fromInputUnsafe(options.remoteIdleTimeout ?? Duration.seconds(30)))
  }
  return BlobStore.of({
    dir: store.dir,
    open: (name, openOptions) => open(store, name, openOptions),
    get: (name) => get(store, name),
    put: (bytes) => put(store, bytes),
    putFile: (raw) => putFile(store, raw),
    hasLocal: (name) => Effect.map(findLocal(store, name), Option.isSome)
  })
})
