import { assert, describe, it } from "@effect/vitest"
import { closest, editDistance } from "../src/internal/closest.ts"

describe("closest", () => {
  it("edit distance counts inserts, deletes and substitutions", () => {
    assert.strictEqual(editDistance("runn", "run"), 1)
    assert.strictEqual(editDistance("exit_codes", "exit_code"), 1)
    assert.strictEqual(editDistance("kitten", "sitting"), 3)
    assert.strictEqual(editDistance("", "abc"), 3)
  })

  it("suggests only a near name, and never compares huge ones", () => {
    assert.strictEqual(closest("timout", ["timeout", "retries"]), "timeout")
    assert.strictEqual(closest("sleep", ["run", "wait", "fleet"]), undefined)
    assert.strictEqual(closest("x".repeat(100_000), ["x"]), undefined)
  })
})
