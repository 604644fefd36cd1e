import { assert, describe, it } from "@effect/vitest"
import { OutputCapture } from "../src/index.ts"

const bytes = (text: string) => new TextEncoder().encode(text)

describe("OutputCapture", () => {
  it("keeps the first and the last half of `limit`, says how much it left out in between", () => {
    const capture = OutputCapture.make(6)
    capture.push(bytes("abc"))
    assert.isFalse(capture.truncated())
    capture.push(bytes("defgh"))
    capture.push(bytes("ijk"))
    assert.strictEqual(capture.text(), `abc${OutputCapture.cutMarker(5)}ijk`)
    assert.strictEqual(capture.total(), 11)
    assert.isTrue(capture.truncated())
  })

  it("what a command said last survives any amount of output before it", () => {
    const capture = OutputCapture.make(64)
    const line = bytes(`${"x".repeat(1000)}\n`)
    for (let i = 0; i < 10_000; i++) capture.push(line)
    capture.push(bytes("END-MARK\n"))
    const text = capture.text()
    assert.isTrue(text.endsWith("END-MARK\n"))
    assert.include(text, "bytes of output left out here")
    assert.isBelow(text.length, 64 + 100)
  })

  it("output exactly at the limit is not truncated; a zero limit keeps nothing", () => {
    const exact = OutputCapture.make(4)
    exact.push(bytes("ab"))
    exact.push(bytes("cd"))
    assert.deepStrictEqual([exact.text(), exact.truncated()], ["abcd", false])
    const none = OutputCapture.make(0)
    none.push(bytes("x"))
    assert.deepStrictEqual([none.text(), none.truncated(), none.total()], ["", true, 1])
  })

  it("copies what it keeps: a reused source buffer does not change the captured text", () => {
    const capture = OutputCapture.make(4)
    const buffer = bytes("hello")
    capture.push(buffer)
    capture.push(buffer)
    buffer.fill(0)
    assert.strictEqual(capture.text(), `he${OutputCapture.cutMarker(6)}lo`)
  })
})
