/**
 * Large or binary responses live beside the scripts as `blobs/<sha1>` or `blobs/<sha1>.gz`, named by the sha1
 * of the uncompressed bytes (verified on every load). Legacy names ending in `_c<digits>` are CRC names of the
 * oldest recordings and are accepted unverified. Missing blobs are fetched from a remote cache (a directory or
 * an http(s) URL), verified, and kept locally.
 */
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { Context, Duration, Effect, FileSystem, Layer, Option, Schema } from "effect"

export const legacyName = /_c[0-9]+$/
const sha1Name = /^[0-9a-fA-F]{40}$/

export class BlobNameInvalid extends Schema.TaggedError<BlobNameInvalid>()("BlobNameInvalid", {
  name: Schema.String
}) {
  override get message(): string {
    return `invalid blob name "${this.name}": expected 40 hex digits (sha1) or a legacy name ending in _c<digits>`
  }
}

export class BlobNotFound extends Schema.TaggedError<BlobNotFound>()("BlobNotFound", {
  name: Schema.String,
  searched: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `blob ${this.name} not found (looked in ${this.searched.join(", ")}); set REPLAY_BLOB_REMOTE_CACHE or --blob-cache`
  }
}

export class BlobCorrupt extends Schema.TaggedError<BlobCorrupt>()("BlobCorrupt", {
  name: Schema.String,
  location: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `blob ${this.name} at ${this.location} is corrupt: ${this.reason}`
  }
}

export class BlobWriteFailed extends Schema.TaggedError<BlobWriteFailed>()("BlobWriteFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot write blob ${this.path}: ${this.reason}`
  }
}

export type BlobError = BlobNameInvalid | BlobNotFound | BlobCorrupt

export interface BlobStoreOptions {
  /** The local blob directory (`blobs/` beside the top-level script by default). */
  readonly dir: string
  /** Where missing blobs are fetched from: a directory or an http(s) URL. */
  readonly remote?: string | undefined
  /** Longest one fetch from an http(s) remote may take, body included (default 30 seconds). */
  readonly remoteTimeout?: Duration.Input | undefined
}

/** A remote cache that never answers (or trickles) cannot hang a replay: each fetch has this deadline. */
export const defaultRemoteTimeout: Duration.Duration = Duration.seconds(30)

export const sha1 = (bytes: Uint8Array): string => Crypto.createHash("sha1").update(bytes).digest("hex")

const gunzip = (bytes: Uint8Array) =>
  Effect.callback<Uint8Array, string>((resume) => {
    Zlib.gunzip(bytes, (error, out) => resume(error ? Effect.fail(error.message) : Effect.succeed(out)))
  })

const gzip = (bytes: Uint8Array) =>
  Effect.callback<Uint8Array>((resume) => {
    Zlib.gzip(bytes, (error, out) => resume(error ? Effect.die(error) : Effect.succeed(out)))
  })

const fetchBytes = (url: string, timeout: Duration.Input) =>
  Effect.tryPromise({
    try: (signal) =>
      fetch(url, { signal }).then((response) =>
        response.ok ? response.arrayBuffer().then((body) => new Uint8Array(body)) : undefined
      ),
    catch: (error) => String(error)
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(`no answer within ${Duration.format(Duration.fromInputUnsafe(timeout))}`)
    })
  )

export class BlobStore extends Context.Service<
  BlobStore,
  {
    readonly dir: string
    /** The uncompressed bytes of a blob, verified against its name. */
    readonly get: (name: string) => Effect.Effect<Uint8Array, BlobError>
    /** Stores bytes as `<sha1>.gz` (temp file + rename, skipped when the blob exists) and returns the sha1. */
    readonly put: (bytes: Uint8Array) => Effect.Effect<string, BlobWriteFailed>
    /** Whether the blob is available locally, without fetching it. */
    readonly hasLocal: (name: string) => Effect.Effect<boolean>
  }
>()("@testbed/replay/BlobStore") {
  static readonly layer = (options: BlobStoreOptions) => Layer.effect(BlobStore, make(options))

  /** The remote cache named by `$REPLAY_BLOB_REMOTE_CACHE`, as the older tools read it. */
  static readonly layerEnv = (dir: string) => BlobStore.layer({ dir, remote: process.env.REPLAY_BLOB_REMOTE_CACHE })
}

export const make = Effect.fn("BlobStore.make")(function* (options: BlobStoreOptions) {
  const fs = yield* FileSystem.FileSystem
  const dir = options.dir
  const exists = (path: string) => fs.exists(path).pipe(Effect.orElseSucceed(() => false))

  const decode = Effect.fn("BlobStore.decode")(function* (name: string, location: string, raw: Uint8Array) {
    const bytes = location.endsWith(".gz")
      ? yield* gunzip(raw).pipe(Effect.mapError((reason) => new BlobCorrupt({ name, location, reason })))
      : raw
    if (!legacyName.test(name) && sha1(bytes) !== name.toLowerCase()) {
      return yield* new BlobCorrupt({ name, location, reason: `sha1 of the content is ${sha1(bytes)}` })
    }
    return bytes
  })

  const readLocal = Effect.fn("BlobStore.readLocal")(function* (base: string, name: string) {
    for (const location of [Path.join(base, name), Path.join(base, `${name}.gz`)]) {
      if (yield* exists(location)) {
        const raw = yield* fs
          .readFile(location)
          .pipe(Effect.mapError((error) => new BlobCorrupt({ name, location, reason: error.message })))
        return Option.some(yield* decode(name, location, raw))
      }
    }
    return Option.none<Uint8Array>()
  })

  const readRemote = Effect.fn("BlobStore.readRemote")(function* (remote: string, name: string) {
    if (!/^https?:\/\//.test(remote)) return yield* readLocal(remote, name)
    const base = remote.replace(/\/+$/, "")
    for (const location of [`${base}/${name}.gz`, `${base}/${name}`]) {
      const raw = yield* fetchBytes(location, options.remoteTimeout ?? defaultRemoteTimeout).pipe(
        Effect.orElseSucceed(() => undefined)
      )
      if (raw !== undefined) return Option.some(yield* decode(name, location, raw))
    }
    return Option.none<Uint8Array>()
  })

  const writeAtomic = Effect.fn("BlobStore.writeAtomic")(function* (name: string, bytes: Uint8Array) {
    const target = Path.join(dir, `${name}.gz`)
    if ((yield* exists(target)) || (yield* exists(Path.join(dir, name)))) return
    const compressed = yield* gzip(bytes)
    const temp = `${target}.tmp-${process.pid}-${Crypto.randomBytes(4).toString("hex")}`
    yield* fs.makeDirectory(dir, { recursive: true }).pipe(
      Effect.andThen(fs.writeFile(temp, compressed)),
      Effect.andThen(fs.rename(temp, target)),
      Effect.onError(() => fs.remove(temp).pipe(Effect.ignore)),
      Effect.mapError((error) => new BlobWriteFailed({ path: target, reason: error.message }))
    )
  })

  const get = Effect.fn("BlobStore.get")(function* (name: string) {
    if (!sha1Name.test(name) && !legacyName.test(name)) return yield* new BlobNameInvalid({ name })
    const local = yield* readLocal(dir, name)
    if (Option.isSome(local)) return local.value
    const searched = [dir]
    if (options.remote !== undefined && options.remote !== "") {
      searched.push(options.remote)
      const remote = yield* readRemote(options.remote, name)
      if (Option.isSome(remote)) {
        // Kept locally so the next run needs no network; a failed local write only costs a refetch.
        yield* writeAtomic(name, remote.value).pipe(Effect.ignore)
        return remote.value
      }
    }
    return yield* new BlobNotFound({ name, searched })
  })

  const put = Effect.fn("BlobStore.put")(function* (bytes: Uint8Array) {
    const name = sha1(bytes)
    yield* writeAtomic(name, bytes)
    return name
  })

  const hasLocal = (name: string) =>
    Effect.map(Effect.all([exists(Path.join(dir, name)), exists(Path.join(dir, `${name}.gz`))]), ([a, b]) => a || b)

  return BlobStore.of({ dir, get, put, hasLocal })
})
