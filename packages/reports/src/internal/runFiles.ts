// Reading the files of a run directory for a report: only paths the event log names, only inside the run
// directory (symbolic links resolved, so a link planted in a service's directory cannot show /etc/shadow in a
// report), only regular files (a FIFO would block the read), and only a bounded tail of each.
import { Effect, FileSystem, Option, Path } from "effect"
import { insideRun } from "./escape.ts"

/** The run directory, resolved once; every file read for a report must resolve inside it. */
export interface RunRoot {
  readonly dir: string
  /** The directory's real path (symbolic links resolved). */
  readonly real: string
}

export const runRoot = Effect.fn("RunFiles.runRoot")(function* (dir: string) {
  const fs = yield* FileSystem.FileSystem
  return yield* fs.realPath(dir).pipe(
    Effect.map((real): Option.Option<RunRoot> => Option.some({ dir, real })),
    Effect.orElseSucceed(() => Option.none<RunRoot>())
  )
})

/** The real path of `relative` when it resolves inside the run directory; none otherwise (or when missing). */
const confined = Effect.fn("RunFiles.confined")(function* (root: RunRoot, relative: string) {
  if (!insideRun(relative)) return Option.none<string>()
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const real = yield* fs.realPath(path.join(root.real, relative)).pipe(Effect.option)
  if (Option.isNone(real)) return real
  const inside = real.value === root.real || real.value.startsWith(`${root.real}${path.sep}`)
  return inside ? real : Option.none<string>()
})

/** The names in a directory of the run (at most `limit`, sorted); empty when it is missing or not inside. */
export const listDirectory = Effect.fn("RunFiles.listDirectory")(function* (
  root: RunRoot,
  relative: string,
  limit: number
) {
  const fs = yield* FileSystem.FileSystem
  const real = yield* confined(root, relative)
  if (Option.isNone(real)) return [] as ReadonlyArray<string>
  const names = yield* fs.readDirectory(real.value).pipe(Effect.orElseSucceed((): Array<string> => []))
  return names.sort().slice(0, limit) as ReadonlyArray<string>
})

export interface Tail {
  /** Size of the whole file. */
  readonly bytes: number
  /** Bytes before the tail. */
  readonly omitted: number
  readonly text: string
}

export interface TailLimits {
  readonly bytes: number
  readonly lines: number
}

const newline = 0x0a

/** Where the shown part of `chunk` starts: after a partial first line (when cut), then at most `lines` lines. */
const tailStart = (chunk: Uint8Array, cut: boolean, lines: number): number => {
  let start = 0
  if (cut) {
    const first = chunk.indexOf(newline)
    // One line longer than the whole window: show its end rather than nothing.
    if (first >= 0 && first < chunk.length - 1) start = first + 1
  }
  let end = chunk.length
  if (end > start && chunk[end - 1] === newline) end--
  let seen = 0
  for (let i = end - 1; i >= start; i--) {
    if (chunk[i] === newline && ++seen === lines) return i + 1
  }
  return start
}

// CSI sequences (colours, cursor moves) that programs write for terminals: noise in a report. The classes are
// disjoint, so the match is linear in the text.
const terminalCodes = /\u001b\[[0-?]*[ -/]*[@-~]/g

const decoder = new TextDecoder("utf-8")

/** The text of a tail: UTF-8 (invalid bytes replaced), terminal codes removed, CRLF as LF, no final newline. */
export const tailText = (bytes: Uint8Array): string =>
  decoder.decode(bytes).replace(terminalCodes, "").replace(/\r\n/g, "\n").replace(/\n$/, "")

const readEnd = Effect.fn("RunFiles.readEnd")(function* (real: string, limits: TailLimits) {
  const fs = yield* FileSystem.FileSystem
  const file = yield* fs.open(real, { flag: "r", noFollow: true })
  const info = yield* file.stat
  if (info.type !== "File") return Option.none<Tail>()
  const size = Number(info.size)
  const offset = Math.max(0, size - limits.bytes)
  yield* file.seek(BigInt(offset), "start")
  const read = yield* file.readAlloc(size - offset)
  const chunk = Option.getOrElse(read, () => new Uint8Array(0))
  const start = tailStart(chunk, offset > 0, limits.lines)
  return Option.some<Tail>({ bytes: size, omitted: offset + start, text: tailText(chunk.subarray(start)) })
}, Effect.scoped)

/**
 * The end of a file of the run: at most `limits.bytes` bytes and `limits.lines` lines, starting at a line boundary.
 * None when the path is outside the run directory, missing, not a regular file or unreadable: a report is never
 * stopped by a log it cannot show.
 */
export const readTail = Effect.fn("RunFiles.readTail")(function* (root: RunRoot, relative: string, limits: TailLimits) {
  const fs = yield* FileSystem.FileSystem
  const real = yield* confined(root, relative)
  if (Option.isNone(real)) return Option.none<Tail>()
  // Checked before opening: opening a FIFO for reading blocks until a writer comes.
  const info = yield* fs.stat(real.value).pipe(Effect.option)
  if (Option.isNone(info) || info.value.type !== "File") return Option.none<Tail>()
  return yield* readEnd(real.value, limits).pipe(Effect.orElseSucceed(() => Option.none<Tail>()))
})
