/**
 * A bundle: the experiment file and the files it needs, packed into one content-addressed blob so a runner can run
 * a test case without the coordinator's file system. Layout: gzip of a 4-byte big-endian header length, the header
 * (JSON: the experiment's and plugin directories' paths in the bundle, each entry's path, size and executable bit)
 * and the entries' bytes in header order. Packing is deterministic (sorted entries, no times), so the same files
 * give the same sha256 on every run. Unpacking trusts nothing: sizes are bounded before and after inflating, and
 * an entry's name never becomes a path outside the target directory (no `..`, absolute or non-file entries).
 */
import { createHash } from "node:crypto"
import { gunzipSync, gzipSync } from "node:zlib"
import { ExitCode } from "@testbed/events"
import { Effect, FileSystem, Path, Runtime, Schema } from "effect"

/** Raw bytes (the files' sizes summed) a bundle may hold by default. */
export const defaultMaxBytes = 64 * 1024 * 1024
/** Entries a bundle may hold: a directory of more files than this is not an experiment's. */
export const maxEntries = 20_000
/** Bytes of the header at most (paths of `maxEntries` entries fit). */
const maxHeaderBytes = 8 * 1024 * 1024

export const Entry = Schema.Struct({
  /** Relative, `/`-separated, normalized; checked again on unpacking. */
  path: Schema.String,
  size: Schema.Int,
  executable: Schema.Boolean,
  /** Only regular files: a bundle never carries links or devices. */
  kind: Schema.Literal("file")
})
export type Entry = typeof Entry.Type

export const Header = Schema.Struct({
  version: Schema.Literal(1),
  /** The experiment file, relative to the bundle's root. */
  experiment: Schema.String,
  /** Plugin directories to load (`--plugins`), relative to the bundle's root. */
  plugins: Schema.Array(Schema.String),
  entries: Schema.Array(Entry)
})
export type Header = typeof Header.Type

/** The files would make the bundle larger than allowed; the biggest are named so the user can move them. */
export class BundleTooLarge extends Schema.TaggedError<BundleTooLarge>()("BundleTooLarge", {
  bytes: Schema.Number,
  /** Bytes allowed (`--bundle-limit`). */
  limit: Schema.Number,
  files: Schema.Int,
  biggest: Schema.Array(Schema.Struct({ path: Schema.String, size: Schema.Number }))
}) {
  override get message(): string {
    const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`
    if (this.files === 0) {
      return `a bundle of ${mib(this.bytes)} is over this runner's limit of ${mib(this.limit)} (raise it with testbed runner --bundle-limit MIB)`
    }
    const over = this.files > maxEntries ? `more than ${maxEntries} files` : `over the limit of ${mib(this.limit)}`
    const named = this.biggest.map((file) => `${file.path} (${mib(file.size)})`).join(", ")
    return `the experiment's bundle would hold ${this.files} files, ${mib(this.bytes)}: ${over}${named === "" ? "" : `; biggest: ${named}`} (move them out of the experiment's directory, or raise --bundle-limit)`
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

/** A file of the experiment's bundle could not be read on the coordinator. */
export class BundleSourceUnreadable extends Schema.TaggedError<BundleSourceUnreadable>()("BundleSourceUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot bundle ${this.path}: ${this.reason}`
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

/** The bytes are not the bundle that was signed for, or not a bundle at all. */
export class BundleCorrupt extends Schema.TaggedError<BundleCorrupt>()("BundleCorrupt", {
  sha256: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `bundle ${this.sha256.slice(0, 12)}: ${this.reason}`
  }
}

/** The bundle is not in the database (pruned, or another database). */
export class BundleMissing extends Schema.TaggedError<BundleMissing>()("BundleMissing", {
  sha256: Schema.String
}) {
  override get message(): string {
    return `bundle ${this.sha256.slice(0, 12)} is not in the cluster's database (pruned?)`
  }
}

/**
 * The cluster's database could not be reached while a runner fetched the bundle, for longer than the outage the
 * cluster rides out (the lock expiry): the runner refuses the attempt, which fails with this reason (the
 * experiment's retries apply).
 */
export class BundleUnreachable extends Schema.TaggedError<BundleUnreachable>()("BundleUnreachable", {
  sha256: Schema.String,
  /** How long the fetch waited for Postgres. */
  waitedMs: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot fetch bundle ${this.sha256.slice(0, 12)}: the cluster's database was unreachable for ${(this.waitedMs / 1000).toFixed(1)} s (the lock expiry): ${this.reason}`
  }
}

/** An entry whose name would land outside the unpacking directory, or that is not a plain file. */
export class BundleEntryUnsafe extends Schema.TaggedError<BundleEntryUnsafe>()("BundleEntryUnsafe", {
  sha256: Schema.String,
  entry: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `bundle ${this.sha256.slice(0, 12)}: entry ${JSON.stringify(this.entry)} refused: ${this.reason}`
  }
}

export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

/** Why a relative name is unsafe as a path, if it is. */
export const unsafeName = (name: string): string | undefined => {
  if (name === "" || name.length > 4096) return "empty or too long"
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name) || name.includes("\\")) return "an absolute path"
  if (name.includes("\u0000")) return "a NUL byte"
  const segments = name.split("/")
  if (segments.includes("..")) return "a `..` segment"
  if (segments.some((segment) => segment === "" || segment === ".")) return "not a normalized path"
  return undefined
}

/** Packs the header and the files' bytes (in header order); the caller has checked the sizes. */
export const pack = (header: Header, contents: ReadonlyArray<Uint8Array>): Uint8Array => {
  const headerBytes = Buffer.from(JSON.stringify(header))
  const length = Buffer.alloc(4)
  length.writeUInt32BE(headerBytes.length)
  return new Uint8Array(gzipSync(Buffer.concat([length, headerBytes, ...contents]), { level: 6 }))
}

const decodeHeader = Schema.decodeUnknownEffect(Schema.fromJsonString(Header))

/** Inflates and checks a bundle: its header, every entry's name and that the sizes add up. */
export const open = Effect.fn("Bundle.open")(function* (expected: string, bytes: Uint8Array, maxBytes: number) {
  const corrupt = (reason: string) => new BundleCorrupt({ sha256: expected, reason })
  if (sha256(bytes) !== expected) return yield* corrupt("its content does not match its sha256 (tampered with?)")
  const raw = yield* Effect.try({
    try: () => gunzipSync(bytes, { maxOutputLength: maxBytes + maxHeaderBytes + 4 }),
    catch: (error) => corrupt(`cannot inflate it (or it is over ${maxBytes} bytes): ${String(error)}`)
  })
  if (raw.length < 4) return yield* corrupt("too short")
  const headerLength = raw.readUInt32BE(0)
  if (headerLength > maxHeaderBytes || 4 + headerLength > raw.length) return yield* corrupt("bad header length")
  const header = yield* decodeHeader(raw.subarray(4, 4 + headerLength).toString("utf8")).pipe(
    Effect.mapError((error) => corrupt(`bad header: ${error.message}`))
  )
  if (header.entries.length > maxEntries) return yield* corrupt(`more than ${maxEntries} entries`)
  const names = new Set<string>()
  for (const name of [header.experiment, ...header.plugins, ...header.entries.map((entry) => entry.path)]) {
    const unsafe = unsafeName(name)
    if (unsafe !== undefined) return yield* new BundleEntryUnsafe({ sha256: expected, entry: name, reason: unsafe })
  }
  for (const entry of header.entries) {
    if (names.has(entry.path)) return yield* corrupt(`entry ${entry.path} appears twice`)
    names.add(entry.path)
  }
  const total = header.entries.reduce((sum, entry) => sum + entry.size, 0)
  if (4 + headerLength + total !== raw.length) return yield* corrupt("the entries' sizes do not add up")
  if (!names.has(header.experiment)) return yield* corrupt("it does not hold its experiment file")
  return { header, payload: raw.subarray(4 + headerLength) }
})

/**
 * Writes a checked bundle's files under `dir` (created, must be new). A name that is a file's and a directory's
 * both fails the write; nothing is ever written outside `dir`: names were checked and no link is created.
 */
export const extract = Effect.fn("Bundle.extract")(function* (
  sha: string,
  opened: Effect.Success<ReturnType<typeof open>>,
  dir: string
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const root = path.resolve(dir)
  let offset = 0
  for (const entry of opened.header.entries) {
    const target = path.resolve(root, entry.path)
    if (!target.startsWith(`${root}${path.sep}`)) {
      return yield* new BundleEntryUnsafe({ sha256: sha, entry: entry.path, reason: "outside the directory" })
    }
    yield* fs.makeDirectory(path.dirname(target), { recursive: true })
    yield* fs.writeFile(target, opened.payload.subarray(offset, offset + entry.size), {
      flag: "wx",
      mode: entry.executable ? 0o755 : 0o644
    })
    offset += entry.size
  }
})
