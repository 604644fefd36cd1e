import { assert, describe, it } from "@effect/vitest"
import { OutputCapture } from "../src/index.ts"

const bytes = (text: string) => new TextEncoder().encode(text)

describe("OutputCapture", () => {
  it("keeps the first `limit` bytes, counts the rest and says it truncated", () => {
    const capture = OutputCapture.make(5)
    capture.push(bytes("abc"))
    assert.isFalse(capture.truncated())
    capture.push(bytes("defgh"))
    capture.push(bytes("ijk"))
    assert.strictEqual(capture.text(), "abcde")
    assert.strictEqual(capture.total(), 11)
    assert.isTrue(capture.truncated())
  })

  it("output exactly at the limit is not truncated; a zero limit keeps nothing", () => {
    const exact = OutputCapture.make(3)
    exact.push(bytes("abc"))
    assert.deepStrictEqual([exact.text(), exact.truncated()], ["abc", false])
    const none = OutputCapture.make(0)
    none.push(bytes("x"))
    assert.deepStrictEqual([none.text(), none.truncated(), none.total()], ["", true, 1])
  })

  it("copies what it keeps: a reused source buffer does not change the captured text", () => {
    const capture = OutputCapture.make(10)
    const buffer = bytes("hello")
    capture.push(buffer)
    buffer.fill(0)
    assert.strictEqual(capture.text(), "hello")
  })
})
