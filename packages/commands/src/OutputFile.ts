/**
 * A process's output written to a log file with a bound: the first `head` bytes as they came, then the latest
 * output. Whenever the file would grow past `head + 2 × tail` it is cut back to the head, one marker line saying
 * how many bytes were left out, and the last `tail` bytes. The file is always current (readers see the newest
 * output at once) and never larger than `head + 2 × tail` plus the marker and one chunk, whatever the process
 * writes; what it wrote last — its verdict, its END-MARK — is always in it.
 */
import { WriteFailed } from "@testbed/events"
import { Effect, FileSystem, Stream } from "effect"
import { cutMarker } from "./OutputCapture.ts"

export interface Limits {
  /** Bytes kept from the start. */
  readonly head: number
  /** Bytes kept from the end (the file holds between one and two times this much of the latest output). */
  readonly tail: number
}

/** 1 MiB of head, 4 to 8 MiB of tail: at most about 9 MiB per log. */
export const defaultLimits: Limits = { head: 1024 * 1024, tail: 4 * 1024 * 1024 }

/** The most a log written with `limits` holds: head, marker, twice the tail, and one chunk being written. */
export const maxBytes = (limits: Limits = defaultLimits): number => limits.head + 2 * limits.tail + 64 * 1024 + 128

const encoder = new TextEncoder()

/**
 * Writes `output` into `path` (created or emptied first) within `limits`, until the stream ends. Fails with
 * `WriteFailed` (the file and the system's code, e.g. ENOSPC) when the file cannot be written.
 */
export const write = Effect.fn("OutputFile.write")(function* <E, R>(
  path: string,
  output: Stream.Stream<Uint8Array, E, R>,
  limits: Limits = defaultLimits
) {
  const fs = yield* FileSystem.FileSystem
  const failed = (error: unknown) => WriteFailed.fromError(path, error)
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const file = yield* fs.open(path, { flag: "w+" }).pipe(Effect.mapError(failed))
      let size = 0
      // Where the kept tail starts once something was cut (head + marker), and how much was cut so far.
      let tailStart: number | undefined
      let omitted = 0
      const compact = Effect.gen(function* () {
        const keepFrom = size - limits.tail
        omitted += keepFrom - (tailStart ?? limits.head)
        yield* file.seek(BigInt(keepFrom), "start")
        const kept = yield* file.readAlloc(limits.tail)
        const marker = encoder.encode(cutMarker(omitted))
        yield* file.seek(BigInt(limits.head), "start")
        yield* file.writeAll(marker)
        if (kept._tag === "Some") yield* file.writeAll(kept.value)
        tailStart = limits.head + marker.length
        size = tailStart + (kept._tag === "Some" ? kept.value.length : 0)
        yield* file.truncate(size)
        yield* file.seek(BigInt(size), "start")
      })
      yield* Stream.runForEachArray(output, (chunks) =>
        Effect.gen(function* () {
          for (const chunk of chunks) {
            yield* file.writeAll(chunk)
            size += chunk.length
            if (size > limits.head + 2 * limits.tail) yield* compact
          }
        }).pipe(Effect.mapError(failed))
      )
    })
  )
})
