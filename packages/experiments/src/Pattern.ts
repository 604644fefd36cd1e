/**
 * Regular expressions from experiment files (`output_matches`, log readiness), matched in linear time: RE2
 * syntax through re2js, so output from the implementation under test can never make a pattern run away
 * (`^(a+)+$` against 50,000 `a`s and a `!` is as quick as any other). Compiled once, when the file is planned;
 * what RE2 cannot do in linear time (backreferences, lookahead, lookbehind) is refused there with the YAML path.
 * Long texts are matched in slices with a yield between them, so a match can always be interrupted.
 */
import { Effect, Result } from "effect"
import { RE2JS } from "re2js"

export interface Pattern {
  /** The pattern as written in the file. */
  readonly source: string
  readonly compiled: RE2JS
}

/** Text matched in one go; longer texts are cut at line breaks into slices about this long. */
export const sliceChars = 1024 * 1024
/** Slices overlap by whole lines, about this much, so a match spanning lines across a cut is still found. */
export const overlapChars = 64 * 1024

const unsupported = (source: string, reason: string): string => {
  if (/\\[1-9]/.test(source))
    return "backreferences (\\1…) are not supported: patterns are matched in linear time (RE2)"
  if (/\(\?<?[=!]/.test(source))
    return "lookahead and lookbehind are not supported: patterns are matched in linear time (RE2)"
  // re2js reports the pattern with the flags it was compiled with (`(?m)`): the file's author did not write them.
  return `not a regular expression (RE2 syntax): ${reason.replace(/^error parsing regexp: /, "").replace("`(?m)", "`")}`
}

/** Compiles `source` with `^`/`$` matching at line breaks; the failure says why, in words for the file's author. */
export const compile = (source: string): Result.Result<Pattern, string> =>
  Result.try({
    try: () => ({ source, compiled: RE2JS.compile(source, RE2JS.MULTILINE) }),
    catch: (error) => unsupported(source, error instanceof Error ? error.message : String(error))
  })

/**
 * Where a slice starting at `start` (a line start) ends: at the end of a line, so `^` and `$` mean what they mean
 * in the whole text. A single line longer than a slice is matched whole (it is bounded by what was read).
 */
const sliceEnd = (text: string, start: number): number => {
  const end = start + sliceChars
  if (end >= text.length) return text.length
  const before = text.lastIndexOf("\n", end)
  if (before > start) return before
  const after = text.indexOf("\n", end)
  return after === -1 ? text.length : after
}

/** Where the next slice starts after one ending at `end` (a line break): the first line start in the overlap. */
const nextStart = (text: string, start: number, end: number): number => {
  const newline = text.indexOf("\n", Math.max(start, end - overlapChars))
  return newline !== -1 && newline < end ? newline + 1 : end + 1
}

/** Whether `pattern` matches somewhere in `text`. */
export const test = (pattern: Pattern, text: string): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    if (text.length <= sliceChars) return Effect.sync(() => pattern.compiled.test(text))
    const from = (start: number): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const end = sliceEnd(text, start)
        if (pattern.compiled.test(text.slice(start, end))) return Effect.succeed(true)
        if (end >= text.length) return Effect.succeed(false)
        // A yield between slices: an interruption (a timeout, Ctrl-C) is seen within one slice's time.
        return Effect.andThen(Effect.yieldNow, from(nextStart(text, start, end)))
      })
    return from(0)
  })
