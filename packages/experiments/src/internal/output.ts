// Reading what a service or step wrote, bounded: `window` for assertions (a log of any size costs at most
// `windowBytes` of memory), and `Scanner` for readiness (only the bytes written since the last look).
import { OutputCapture } from "@testbed/commands"
import { Effect, FileSystem } from "effect"
import * as Pattern from "../Pattern.ts"

/** The most of one log an assertion reads: all of a log up to this size, else its first and last bytes. */
export const windowBytes = 16 * 1024 * 1024
const windowHead = windowBytes / 4

const decoder = () => new TextDecoder("utf-8")

const readAt = (file: FileSystem.File, offset: number, length: number) =>
  Effect.andThen(file.seek(BigInt(offset), "start"), file.readAlloc(length))

/**
 * The text of `path` within `windowBytes`: the whole file when it fits, else its first quarter, a marker saying
 * how much was left out, and the rest from its end (where a program's verdict is). Undefined when unreadable.
 */
export const window = (path: string): Effect.Effect<string | undefined, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    Effect.scoped(
      Effect.gen(function* () {
        const file = yield* fs.open(path, { flag: "r" })
        const size = Number((yield* file.stat).size)
        if (size <= windowBytes) {
          const all = yield* file.readAlloc(size)
          return all._tag === "Some" ? decoder().decode(all.value) : ""
        }
        const tailBytes = windowBytes - windowHead
        const head = yield* readAt(file, 0, windowHead)
        const tail = yield* readAt(file, size - tailBytes, tailBytes)
        const text = (bytes: typeof head) => (bytes._tag === "Some" ? decoder().decode(bytes.value) : "")
        return `${text(head)}${OutputCapture.cutMarker(size - windowHead - tailBytes)}${text(tail)}`
      })
    ).pipe(Effect.orElseSucceed(() => undefined))
  )

/** Whether `pattern` matches the window of `path` (false when the file is missing). */
export const matches = (path: string, pattern: Pattern.Pattern): Effect.Effect<boolean, never, FileSystem.FileSystem> =>
  Effect.flatMap(window(path), (text) => (text === undefined ? Effect.succeed(false) : Pattern.test(pattern, text)))

/** Bytes a scanner reads per look; a line longer than `carryChars` is matched in pieces. */
const scanBytes = 4 * 1024 * 1024
const carryChars = 64 * 1024

/**
 * Looks for a line matching a pattern in a growing log, reading each byte about once: from where the last look
 * stopped, keeping the unfinished last line for the next look. A log cut back by `OutputFile` (smaller than
 * where the scanner was) is read again from its start.
 */
export const scanner = (path: string, pattern: Pattern.Pattern) => {
  let offset = 0
  let carry = ""
  let text = decoder()
  return Effect.flatMap(FileSystem.FileSystem, (fs) =>
    Effect.scoped(
      Effect.gen(function* () {
        const file = yield* fs.open(path, { flag: "r" })
        const size = Number((yield* file.stat).size)
        if (size < offset) {
          offset = 0
          carry = ""
          text = decoder()
        }
        if (size === offset) return false
        const length = Math.min(size - offset, scanBytes)
        const bytes = yield* readAt(file, offset, length)
        if (bytes._tag === "None") return false
        offset += bytes.value.length
        const chunk = carry + text.decode(bytes.value, { stream: true })
        if (yield* Pattern.test(pattern, chunk)) return true
        const lastBreak = chunk.lastIndexOf("\n")
        carry = chunk.slice(lastBreak + 1).slice(-carryChars)
        return false
      })
    ).pipe(Effect.orElseSucceed(() => false))
  )
}

/** What a failed `output_matches` quotes of a log: its last lines, within this many bytes of its end. */
const tailBytes = 1024
const tailLines = 8

/**
 * The last few non-empty lines of `path` (from its last KiB), for a failure message to show what the program did
 * say: the evidence one reads before opening the log. Empty when the file is missing or empty.
 */
export const lastLines = (path: string): Effect.Effect<ReadonlyArray<string>, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    Effect.scoped(
      Effect.gen(function* () {
        const file = yield* fs.open(path, { flag: "r" })
        const size = Number((yield* file.stat).size)
        const length = Math.min(size, tailBytes)
        const bytes = yield* readAt(file, size - length, length)
        const text = bytes._tag === "Some" ? decoder().decode(bytes.value) : ""
        // The first line of a cut window may be partial: drop it unless the window is the whole file.
        const lines = text.split("\n").slice(size > length ? 1 : 0)
        return lines
          .map((line) => line.trimEnd())
          .filter((line) => line !== "")
          .slice(-tailLines)
      })
    ).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
  )
