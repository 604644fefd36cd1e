import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as Script from "../src/Script.ts"

const decodeError = (json: unknown) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Script.decodeFile("s.json", json))
    assert.isTrue(Exit.isFailure(exit))
    return Exit.isFailure(exit) ? String(exit.cause) : ""
  })

describe("Script", () => {
  it.effect("decodes every script type", () =>
    Effect.gen(function* () {
      const entries = yield* Script.decodeFile("s.json", {
        recorded_script: {
          type: "compound",
          scripts: [
            { type: "script", command: "a\n", response: "b" },
            { type: "script", command: "c", responses: ["d", "e"] },
            { type: "script", command: "f", response_hex: "00ff" },
            { type: "script", command: "g", response_blob: "a".repeat(40) },
            { type: "named", name: "other" },
            { type: "external", file: "x.json" },
            { type: "command", action: "sleep", args: [0.1] },
            { type: "nop" },
            { type: "comment", text: "ignored extra keys are fine" }
          ]
        },
        multi: { type: "compound_multi", scripts: [{ type: "compound", scripts: [] }] },
        other: { type: "script", command_hex: "ff00", response: "", fault: { delay: 0.1, chunk: { size: 2 } } }
      })
      assert.deepStrictEqual(
        entries.map(([name]) => name),
        ["recorded_script", "multi", "other"]
      )
    })
  )

  it.effect("errors name the JSON path of the bad field", () =>
    Effect.gen(function* () {
      const badField = yield* decodeError({
        recorded_script: { type: "compound", scripts: [{ type: "nop" }, { type: "script", command: 5, response: "" }] }
      })
      assert.include(badField, "recorded_script.scripts[1]")
      assert.include(badField, "command")
      const unknownType = yield* decodeError({ a: { type: "compound", scripts: [{ type: "bogus" }] } })
      assert.include(unknownType, 'unknown script type "bogus"')
      assert.include(unknownType, "a.scripts[0].type")
      const missing = yield* decodeError({ a: { type: "script", command: "x" } })
      assert.include(missing, "missing response field")
      const badBlob = yield* decodeError({ a: { type: "script", command: "x", response_blob: "nothex" } })
      assert.include(badBlob, "a.response_blob")
    })
  )

  it("readers take the first present of response, responses, response_hex, response_blob", () => {
    assert.deepStrictEqual(
      Script.responseField({ type: "script", response: "a", responses: ["b"], response_hex: "00" }),
      {
        _tag: "Text",
        text: "a"
      }
    )
    assert.deepStrictEqual(Script.responseField({ type: "script", responses: ["b", "c"], response_hex: "00" }), {
      _tag: "Text",
      text: "bc"
    })
    assert.deepStrictEqual(Script.responseField({ type: "script", response_hex: "00", response_blob: "x_c1" }), {
      _tag: "Hex",
      hex: "00"
    })
  })

  it.effect("writers choose the response field by the older writer's rules", () =>
    Effect.gen(function* () {
      const blob = (bytes: Uint8Array) => Effect.succeed(`blob:${bytes.length}`)
      const text = (s: string) => Script.responseFields(Buffer.from(s, "latin1"), blob)
      assert.deepStrictEqual(yield* text("x".repeat(162)), { response: "x".repeat(162) })
      const long = yield* text("y".repeat(400))
      assert.deepStrictEqual(long, { responses: ["y".repeat(162), "y".repeat(162), "y".repeat(76)] })
      assert.deepStrictEqual(yield* Script.responseFields(new Uint8Array([0, 1, 200]), blob), {
        response_hex: "0001c8"
      })
      assert.deepStrictEqual(yield* Script.responseFields(new Uint8Array(81).fill(255), blob), {
        response_hex: "ff".repeat(81)
      })
      assert.deepStrictEqual(yield* Script.responseFields(new Uint8Array(82).fill(255), blob), {
        response_blob: "blob:82"
      })
      // Long text is binary by size: a blob, whatever its bytes.
      assert.deepStrictEqual(yield* text("z".repeat(4097)), { response_blob: "blob:4097" })
      assert.deepStrictEqual(yield* text(""), { response: "" })
    })
  )

  it("commands are text when UTF-8, command_hex otherwise; output escapes non-ASCII like ensure_ascii", () => {
    assert.deepStrictEqual(Script.commandFields(Buffer.from("héllo\n")), { command: "héllo\n" })
    assert.deepStrictEqual(Script.commandFields(new Uint8Array([0xff, 0x00])), { command_hex: "ff00" })
    const text = Script.stringify({ a: { type: "script", command: "é\u0000", response: "" } })
    assert.include(text, '"command": "\\u00e9\\u0000"')
    assert.deepStrictEqual(JSON.parse(text), { a: { type: "script", command: "é\u0000", response: "" } })
  })
})
