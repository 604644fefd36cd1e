import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as ByteSize from "../src/ByteSize.ts"

describe("ByteSize", () => {
  it("reads bytes, decimal and binary units", () => {
    const read = (input: number | string) => Result.getOrThrow(ByteSize.parse(input))
    assert.strictEqual(read(1024), 1024)
    assert.strictEqual(read("200MB"), 200_000_000)
    assert.strictEqual(read("1.5 GiB"), 1.5 * 1024 ** 3)
    assert.strictEqual(read("512k"), 512 * 1024)
    assert.strictEqual(read("64mb"), 64_000_000)
  })

  it("refuses what is no amount, naming it", () => {
    for (const bad of ["lots", "-1MB", "12 parsecs", "1e9", "x".repeat(1000), Number.NaN, -5]) {
      const parsed = ByteSize.parse(bad)
      assert.isTrue(Result.isFailure(parsed), String(bad))
      if (Result.isFailure(parsed)) assert.include(parsed.failure, "not an amount of bytes")
    }
    const decoded = Schema.decodeUnknownResult(ByteSize.ByteSize)("soon")
    assert.isTrue(Result.isFailure(decoded))
  })

  it("formats in decimal units", () => {
    assert.strictEqual(ByteSize.format(512), "512 B")
    assert.strictEqual(ByteSize.format(142_300_000), "142.3 MB")
    assert.strictEqual(ByteSize.format(64_000_000), "64.0 MB")
  })
})
