// Blob files as streams: read (a `.gz` inflated as it is read), verified in one pass with bounded memory, and
// written (sha1 + gzip of a raw file into a temp file, renamed into place). Nothing holds a whole blob.
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Stream from "node:stream"
import * as Zlib from "node:zlib"
import { Effect, Stream as EffectStream } from "effect"

/** Read and inflate in pieces of this size. */
export const chunkSize = 64 * 1024

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** A node readable of the uncompressed content; errors of the file and of gunzip both end it. */
const open = (location: string, compressed: boolean): Stream.Readable => {
  const file = Fs.createReadStream(location, { highWaterMark: chunkSize })
  return compressed ? Stream.pipeline(file, Zlib.createGunzip({ chunkSize }), () => {}) : file
}

/** The uncompressed content of a blob file, in chunks; fails with the reason when the file or its gzip is bad. */
export const read = (location: string, compressed: boolean): EffectStream.Stream<Uint8Array, string> =>
  EffectStream.suspend(() => EffectStream.fromAsyncIterable<Uint8Array, string>(open(location, compressed), reason))

export interface Scanned {
  /** Uncompressed bytes. */
  readonly size: number
  readonly sha1: string
  /** The content, when it was at most `keep` bytes. */
  readonly bytes: Uint8Array | undefined
}

/** One pass over a blob file: its size and sha1, and its bytes when there are at most `keep` of them. */
export const scan = (location: string, compressed: boolean, keep: number): Effect.Effect<Scanned, string> =>
  Effect.suspend(() => {
    const hash = Crypto.createHash("sha1")
    let size = 0
    let kept: Array<Uint8Array> | undefined = []
    return read(location, compressed).pipe(
      EffectStream.runForEachArray((chunks) =>
        Effect.sync(() => {
          for (const chunk of chunks) {
            hash.update(chunk)
            size += chunk.length
            if (kept === undefined) continue
            if (size <= keep) kept.push(chunk)
            else kept = undefined
          }
        })
      ),
      Effect.map(() => ({
        size,
        sha1: hash.digest("hex"),
        bytes: kept === undefined ? undefined : new Uint8Array(Buffer.concat(kept))
      }))
    )
  })

/** What identifies a file's content without reading it: checked before a verified blob is read again. */
export const identity = (location: string): Effect.Effect<string, string> =>
  Effect.callback<string, string>((resume) => {
    Fs.stat(location, (error, stats) =>
      resume(
        error
          ? Effect.fail(error.message)
          : Effect.succeed(`${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`)
      )
    )
  })

/** A unique temp name beside `target`: never a name another writer (or a planted link) could be using. */
export const tempBeside = (dir: string, stem: string): string =>
  `${dir}/.${stem}.tmp-${process.pid}-${Crypto.randomBytes(6).toString("hex")}`

/**
 * Compresses a raw file into `temp` (created exclusively) and hashes it on the way: the sha1 of the raw bytes.
 * The caller renames `temp` into place under that name.
 */
export const gzipFile = (raw: string, temp: string): Effect.Effect<string, string> =>
  Effect.callback<string, string>((resume) => {
    const hash = Crypto.createHash("sha1")
    const hashing = new Stream.Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk)
        done(null, chunk)
      }
    })
    const input = Fs.createReadStream(raw, { highWaterMark: chunkSize })
    const output = Fs.createWriteStream(temp, { flags: "wx" })
    Stream.pipeline(input, hashing, Zlib.createGzip({ chunkSize }), output, (error) =>
      resume(error ? Effect.fail(reason(error)) : Effect.succeed(hash.digest("hex")))
    )
    return Effect.sync(() => {
      input.destroy()
      output.destroy()
    })
  })
