// The hand-written decoders of the hot path against the Schema they stand in for: on valid messages, on messages
// with wrong or odd fields, on garbage. The fast one may decline (the Schema then decides), never disagree.
import { assert, describe, it } from "@effect/vitest"
import { Option, Schema } from "effect"
import * as FastDecode from "../src/internal/fastDecode.ts"
import { Protocol } from "../src/index.ts"

const bySchema = {
  command: Schema.decodeUnknownOption(Schema.fromJsonString(Protocol.CommandMessage)),
  response: Schema.decodeUnknownOption(Schema.fromJsonString(Protocol.ResponseMessage))
}

/** Equal values, and equal when written again (same keys in the same order: feedback lines and reports read them). */
const agrees = <A>(fast: A | undefined, schema: Option.Option<A>) => {
  if (fast === undefined) return
  assert.isTrue(Option.isSome(schema), `fast accepted what the Schema refuses: ${JSON.stringify(fast)}`)
  assert.strictEqual(JSON.stringify(fast), JSON.stringify(Option.getOrThrow(schema)))
  assert.deepStrictEqual(fast, Option.getOrThrow(schema))
}

// Any field of either message, a stray one and `__proto__`, with values of every JSON type (numbers that JSON
// cannot carry become null, a non-safe integer stays a number).
const anyValue = Schema.Union([
  Schema.String,
  Schema.Number,
  Schema.Boolean,
  Schema.Null,
  Schema.Literals(["succeeded", "refused", "bogus"]),
  Schema.Array(Schema.String)
])
const fieldNames = Schema.Literals([
  "client_id",
  "command",
  "command_id",
  "timestamp",
  "signature",
  "timeout",
  "start_time",
  "end_time",
  "output",
  "error",
  "exit_code",
  "signal",
  "duration",
  "timed_out",
  "status",
  "refusal",
  "failure",
  "other",
  "__proto__"
])
const AnyObject = Schema.Record(fieldNames, anyValue)
/** One field, set to anything. */
const Change = Schema.Tuple([fieldNames, anyValue])

describe("FastDecode", () => {
  it.prop(
    "takes every valid answer the Schema takes, with the same result",
    [Protocol.ResponseMessage],
    ([message]) => {
      const payload = JSON.stringify(message)
      const fast = FastDecode.response(payload)
      const schema = bySchema.response(payload)
      // Generated from the Schema, so valid: the fast path must not decline a plainly written message.
      assert.isTrue(Option.isSome(schema))
      assert.isDefined(fast)
      agrees(fast, schema)
    }
  )

  it.prop(
    "takes every valid command the Schema takes, with the same result",
    [Protocol.CommandMessage],
    ([message]) => {
      const payload = JSON.stringify(message)
      const fast = FastDecode.command(payload)
      assert.isDefined(fast)
      agrees(fast, bySchema.command(payload))
    }
  )

  it.prop(
    "never accepts a message the Schema refuses, nor decodes one differently",
    [Protocol.ResponseMessage, Protocol.CommandMessage, Change, AnyObject],
    ([response, command, [field, value], anything]) => {
      // Valid messages with one field replaced by anything (or added): near misses, which is the point.
      const change = { [field]: value }
      for (const payload of [
        JSON.stringify({ ...response, ...change }),
        JSON.stringify({ ...command, ...change }),
        JSON.stringify(anything)
      ]) {
        agrees(FastDecode.response(payload), bySchema.response(payload))
        agrees(FastDecode.command(payload), bySchema.command(payload))
      }
    }
  )

  it.prop("declines garbage", [Schema.String], ([text]) => {
    agrees(FastDecode.response(text), bySchema.response(text))
    agrees(FastDecode.command(text), bySchema.command(text))
  })

  it("leaves the odd cases to the Schema", () => {
    // Not plainly valid: a float exit code, a number JSON cannot hold, a status nobody sends, an array, a prototype key.
    for (const payload of [
      '{"client_id":"a","command":"c","start_time":"1","end_time":"2","error":"None","exit_code":1.5}',
      '{"client_id":"a","command":"c","start_time":"1","end_time":"2","error":"None","duration":1e999}',
      '{"client_id":"a","command":"c","start_time":"1","end_time":"2","error":"None","status":"bogus"}',
      '[{"client_id":"a"}]',
      "null"
    ]) {
      assert.isUndefined(FastDecode.response(payload), payload)
      assert.isTrue(Option.isNone(Protocol.decodeResponse(payload)), payload)
    }
    const withProto = '{"client_id":"a","command":"c","__proto__":{"timeout":1}}'
    assert.deepStrictEqual(FastDecode.command(withProto), { client_id: "a", command: "c" })
    agrees(FastDecode.command(withProto), bySchema.command(withProto))
  })
})
