/**
 * How an amount of memory or data is written in every file testbed reads: a number is bytes (`1048576`); a string is
 * a number with a unit (`200MB`, `1.5 GiB`, `512k`). Decimal units are powers of 1000, binary ones (`KiB`, `MiB`…)
 * of 1024; a bare `k`/`m`/`g` is binary, as `ulimit` and `docker --memory` read it. Decoded once, at the edge.
 */
import { Effect, Result, Schema, SchemaIssue, SchemaTransformation } from "effect"

const unitBytes: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4
}

/** What the error says is accepted. */
export const accepted = 'use bytes, or e.g. "200MB", "1.5GiB", "512k"'

// Anchored, one optional unit: linear, and the text is bounded before it runs.
const pattern = /^(\d+(?:\.\d+)?)\s*([a-z]{0,3})$/
const maxLength = 40

const invalid = (input: number | string, why: string = accepted): Result.Result<number, string> =>
  Result.fail(`not an amount of bytes: ${JSON.stringify(input)} (${why})`)

/** Reads an amount of bytes (rounded to a whole byte); the failure is a sentence naming the value. */
export const parse = (input: number | string): Result.Result<number, string> => {
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) return invalid(input, "an amount is finite and never negative")
    return Result.succeed(Math.round(input))
  }
  const text = input.trim().toLowerCase()
  if (text.length > maxLength) return invalid(input)
  const match = pattern.exec(text)
  if (match === null) return invalid(input)
  const per = match[2] === "" ? 1 : unitBytes[match[2]!]
  if (per === undefined) return invalid(input)
  const bytes = Math.round(Number(match[1]) * per)
  return Number.isSafeInteger(bytes) ? Result.succeed(bytes) : invalid(input, "too large")
}

/** `142.3 MB`, `512 B`: decimal units, one decimal, for messages and reports. */
export const format = (bytes: number): string => {
  const units = ["B", "kB", "MB", "GB", "TB"]
  let value = bytes
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}

/** What a file may hold: bytes as a number, or text with a unit. */
export const Input = Schema.Union([Schema.Finite, Schema.String])

/** An amount of bytes in a file, decoded to a whole number of bytes (encoded back as that number). */
export const ByteSize = Input.pipe(
  Schema.decodeTo(
    Schema.Int,
    SchemaTransformation.transformEffect({
      decode: (input, options) =>
        Result.match(parse(input), {
          onFailure: (message) => Effect.fail(new SchemaIssue.InvalidValue({ message }, input, options)),
          onSuccess: Effect.succeed
        }),
      encode: (bytes) => Effect.succeed(bytes)
    })
  )
)
export type ByteSize = typeof ByteSize.Type
