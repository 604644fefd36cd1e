// The remote blob cache ($REPLAY_BLOB_REMOTE_CACHE): a directory or an http(s) URL. A blob found there is copied
// (streamed, never held in memory) into a temp file in the local store's directory (which must exist); the caller
// verifies it and renames it.
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Stream from "node:stream"
import { Effect, Option } from "effect"

export interface Fetched {
  /** The temp file holding the blob as found (still compressed when `compressed`). */
  readonly temp: string
  readonly compressed: boolean
  /** Where it came from, for messages. */
  readonly location: string
}

/** Removes a temp file, if it is there. */
export const remove = (path: string): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    Fs.rm(path, { force: true }, () => resume(Effect.void))
  })

const candidates = (name: string) => [
  { file: `${name}.gz`, compressed: true },
  { file: name, compressed: false }
]

const copyFrom = Effect.fn("RemoteCache.copyFrom")(function* (dir: string, name: string, temp: string) {
  for (const candidate of candidates(name)) {
    const location = Path.join(dir, candidate.file)
    const copied = yield* Effect.callback<boolean, string>((resume) => {
      Fs.copyFile(location, temp, Fs.constants.COPYFILE_EXCL, (error) =>
        resume(
          error === null
            ? Effect.succeed(true)
            : error.code === "ENOENT"
              ? Effect.succeed(false)
              : Effect.fail(error.message)
        )
      )
    })
    if (copied) return Option.some<Fetched>({ temp, compressed: candidate.compressed, location })
  }
  return Option.none<Fetched>()
})

/**
 * GETs `url` into `temp`. `idleMs` bounds every wait: for the answer, and between pieces of the body (a server
 * that stops sending aborts the download). None on a 404 or any other non-success answer.
 */
const download = (url: string, temp: string, idleMs: number) =>
  Effect.tryPromise({
    try: (signal) => {
      const controller = new AbortController()
      const abort = () => controller.abort(new Error(`no data from ${url} for ${idleMs} ms`))
      signal.addEventListener("abort", () => controller.abort(signal.reason))
      let timer = setTimeout(abort, idleMs)
      const touch = new Stream.Transform({
        transform(chunk: Buffer, _encoding, done) {
          clearTimeout(timer)
          timer = setTimeout(abort, idleMs)
          done(null, chunk)
        }
      })
      return fetch(url, { signal: controller.signal })
        .then((response) => {
          if (!response.ok || response.body === null) {
            void response.body?.cancel()
            return false
          }
          const body = Stream.Readable.fromWeb(response.body as import("node:stream/web").ReadableStream<Uint8Array>)
          const file = Fs.createWriteStream(temp, { flags: "wx" })
          return Stream.promises.pipeline(body, touch, file, { signal: controller.signal }).then(() => true)
        })
        .finally(() => clearTimeout(timer))
    },
    catch: (error) => (error instanceof Error ? error.message : String(error))
  })

const fetchFrom = Effect.fn("RemoteCache.fetchFrom")(function* (
  base: string,
  name: string,
  temp: string,
  idleMs: number
) {
  for (const candidate of candidates(name)) {
    const location = `${base}/${candidate.file}`
    const found = yield* download(location, temp, idleMs).pipe(Effect.onError(() => remove(temp)))
    if (found) return Option.some<Fetched>({ temp, compressed: candidate.compressed, location })
  }
  return Option.none<Fetched>()
})

/** Copies blob `name` from the remote cache into `temp`, or None when the cache does not have it. */
export const fetchInto = (
  remote: string,
  name: string,
  temp: string,
  idleMs: number
): Effect.Effect<Option.Option<Fetched>, string> =>
  /^https?:\/\//.test(remote) ? fetchFrom(remote.replace(/\/+$/, ""), name, temp, idleMs) : copyFrom(remote, name, temp)
