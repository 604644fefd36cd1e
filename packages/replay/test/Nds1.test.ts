// Golden bytes of every nds1 action, computed by hand from the format table of COMPAT-NDS-MODULES.md.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { module as nds1 } from "../src/nds/Nds1.ts"
import { pythonFloat } from "../src/nds/Wire.ts"
import { ascii, type Call, hex, refusal, run } from "./NdsHarness.ts"

// X1:A real_4 (type 4) 16 Hz, X1:B int_4 (type 2) 8 Hz; and one channel of each other type at 2 Hz.
const registrations: ReadonlyArray<Call> = [
  ["register_chan", ["X1:A", 16, 4, 3, 7, "counts", 2.0, 0.5, -1.5]],
  ["register_chan", ["X1:B", 8, 2, 0, 1, "V", 1, 0.25, 0]],
  ["register_chan", ["X1:I16", 2, 1, 0, 0, "", 1, 1, 0]],
  ["register_chan", ["X1:I64", 2, 3, 0, 0, "", 1, 1, 0]],
  ["register_chan", ["X1:F64", 2, 5, 0, 0, "", 1, 1, 0]],
  ["register_chan", ["X1:C8", 2, 6, 0, 0, "", 1, 1, 0]],
  ["register_chan", ["X1:U32", 2, 7, 0, 0, "", 1, 1, 0]]
]

const answer = (calls: ReadonlyArray<Call>, input = "") =>
  Effect.map(run(nds1, [...registrations, ...calls], input), (r) => r.output)

describe("nds1 golden bytes", () => {
  it.effect("register_chan writes nothing", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* answer([]), "")
    })
  )

  it.effect("gen_sc3_12_1: the nine fields as text, each followed by a newline", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([["gen_sc3_12_1", ["X1:A"]]]),
        hex(
          "58313a41 0a", // name X1:A
          "3136 0a", // rate 16
          "34 0a", // type 4
          "33 0a", // tp_num 3
          "37 0a", // group 7
          "636f756e7473 0a", // unit counts
          "322e30 0a", // gain 2.0 (a float, as Python writes it)
          "302e35 0a", // slope 0.5
          "2d312e35 0a" // offset -1.5
        )
      )
    })
  )

  it.effect("gen_sc2_12_1: padded name, hex text of rate tp_num group type gain slope offset, padded unit", () =>
    Effect.gen(function* () {
      const a =
        ascii(`X1:A${" ".repeat(56)}`) + // name padded to 60
        ascii("00000010") + // u32 rate 16
        ascii("00000003") + // u32 tp_num 3
        ascii("0007") + // u16 group 7
        ascii("0004") + // u16 type 4
        ascii("40000000") + // f32 gain 2.0: sign 0, exponent 128, mantissa 0
        ascii("3f000000") + // f32 slope 0.5: exponent 126
        ascii("bfc00000") + // f32 offset -1.5: sign 1, exponent 127, mantissa .1b
        ascii(`counts${" ".repeat(34)}`) // unit padded to 40
      const b =
        ascii(`X1:B${" ".repeat(56)}`) +
        ascii("00000008") +
        ascii("00000000") +
        ascii("0001") +
        ascii("0002") +
        ascii("3f800000") + // gain 1.0
        ascii("3e800000") + // slope 0.25: exponent 125
        ascii("00000000") + // offset 0.0
        ascii(`V${" ".repeat(39)}`)
      assert.strictEqual(a.length / 2, 148)
      assert.strictEqual(yield* answer([["gen_sc2_12_1", ["X1:A", "X1:B"]]]), a + b)
    })
  )

  it.effect("writer-id: hex8 of the number, then u32 offline flag", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([
          ["writer-id", [10, "online"]],
          ["writer-id", [255, true]],
          ["writer-id", [10, false]],
          ["writer-id", [0x123456789, "offline"]]
        ]),
        hex(
          "3030303030303061 00000000", // "0000000a" online
          "3030303030306666 00000000", // "000000ff" online (true)
          "3030303030303061 00000001", // "0000000a" offline
          "313233343536373839 00000001" // "123456789": more than 8 digits, never cut
        )
      )
    })
  )

  it.effect("reconfigure-block: five u32 header, then little-endian offset, slope, status per channel", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([["reconfigure-block", [["X1:A", "X1:B"]]]]),
        hex(
          "00000028", // 16 + 12·2 = 40
          "ffffffff ffffffff 00000003 ffffffff",
          "00000000 0000003f 00000000", // X1:A: f32le 0.0, f32le 0.5, u32le 0
          "00000000 0000803e 00000000" // X1:B: f32le 0.0, f32le 0.25, u32le 0
        )
      )
    })
  )

  it.effect("data-header: size (16 + bytes·rate·stride per channel), stride, gps, 0, sequence", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([
          ["data-header", [["X1:A", "X1:B"], 1000000000, 2, 5]],
          ["data-header", [["X1:I16", "X1:I64", "X1:F64", "X1:C8", "X1:U32"], 7, 1, 0]]
        ]),
        hex(
          "000000d0", // 16 + 4·16·2 + 4·8·2 = 208
          "00000002 3b9aca00 00000000 00000005", // stride 2, gps 1000000000, 0, sequence 5
          "0000004c", // 16 + 2·2 (int_2) + 8·2 (int_8) + 8·2 (real_8) + 8·2 (complex_8) + 4·2 (uint_4) = 76
          "00000001 00000007 00000000 00000000"
        )
      )
    })
  )

  it.effect("write-data: count copies of the value in the channel's type", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([
          ["write-data", ["X1:A", 3, 2]], // f32 2.0
          ["write-data", ["X1:B", 2, -1]], // i32 -1
          ["write-data", ["X1:B", 1, 2.7]], // i32: truncated toward zero, as Python's int()
          ["write-data", ["X1:I16", 2, 258]], // i16 0x0102
          ["write-data", ["X1:I64", 1, -2]], // i64
          ["write-data", ["X1:F64", 1, 1.5]], // f64 1.5: exponent 1023, mantissa .1b
          ["write-data", ["X1:U32", 1, 4294967295]], // u32 max
          ["write-data", ["X1:A", 0, 1]] // nothing
        ]),
        hex(
          "40000000 40000000 40000000",
          "ffffffff ffffffff",
          "00000002",
          "0102 0102",
          "fffffffffffffffe",
          "3ff8000000000000",
          "ffffffff"
        )
      )
    })
  )

  it.effect("termination-block: u32 16 then four zeros", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([["termination-block", []]]),
        hex("00000010 00000000 00000000 00000000 00000000")
      )
    })
  )

  it.effect("handle_start_net_writer_full: one answered request per line", () =>
    Effect.gen(function* () {
      const request = 'start net-writer 1000000000 2 {"X1:B"};\n'
      const result = yield* run(nds1, [...registrations, ["handle_start_net_writer_full", [1]]], `${request}rest`)
      assert.strictEqual(
        result.output,
        hex(
          "30303030", // "0000"
          "3030303030303031 00000001", // writer-id(1, offline)
          "0000001c ffffffff ffffffff 00000003 ffffffff", // reconfigure-block([X1:B]): 16 + 12
          "00000000 0000803e 00000000",
          "00000030 00000001 3b9aca00 00000000 00000000", // second 0: 16 + 4·8, stride 1, gps, 0, seq 0
          "00000000".repeat(8), // 8 samples of 0
          "00000030 00000001 3b9aca01 00000000 00000001", // second 1
          "00000001".repeat(8), // 8 samples of 1
          "00000010 00000000 00000000 00000000 00000000" // termination-block
        )
      )
      assert.strictEqual(result.unread, ascii("rest"))
    })
  )

  it.effect("handle_start_net_writer_full counts writer ids from 1 within the step", () =>
    Effect.gen(function* () {
      const lines = 'start net-writer 5 0 {"X1:B"};\nstart net-writer 6 0 {"X1:A"};\n'
      const result = yield* run(nds1, [...registrations, ["handle_start_net_writer_full", [2]]], lines)
      assert.strictEqual(
        result.output,
        hex(
          "30303030 3030303030303031 00000001 0000001c ffffffff ffffffff 00000003 ffffffff 00000000 0000803e 00000000",
          "00000010 00000000 00000000 00000000 00000000",
          "30303030 3030303030303032 00000001 0000001c ffffffff ffffffff 00000003 ffffffff 00000000 0000003f 00000000",
          "00000010 00000000 00000000 00000000 00000000"
        )
      )
    })
  )
})

describe("nds1 at run time", () => {
  it.effect("a request line off the pattern is a ScriptMismatch at the first wrong byte", () =>
    Effect.gen(function* () {
      const wrong = yield* Effect.flip(
        run(nds1, [...registrations, ["handle_start_net_writer_full", [1]]], 'start net-writer 100 2 ("X1:B"};\n')
      )
      assert.strictEqual(wrong._tag, "ScriptMismatch")
      if (wrong._tag === "ScriptMismatch") assert.strictEqual(wrong.offset, "start net-writer 100 2 ".length)
      const prefix = yield* Effect.flip(
        run(nds1, [...registrations, ["handle_start_net_writer_full", [1]]], 'start net-reader 100 2 {"X1:B"};\n')
      )
      assert.strictEqual(prefix._tag, "ScriptMismatch")
      if (prefix._tag === "ScriptMismatch") assert.strictEqual(prefix.offset, "start net-".length)
    })
  )

  it.effect("a channel not registered on this connection fails the step, naming it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(run(nds1, [["gen_sc3_12_1", ["X1:NOPE"]]]))
      assert.strictEqual(error._tag, "ActionFailed")
      assert.include(error.message, '"X1:NOPE" is not registered')
      const requested = yield* Effect.flip(
        run(nds1, [...registrations, ["handle_start_net_writer_full", [1]]], 'start net-writer 1 1 {"X1:Z"};\n')
      )
      assert.include(requested.message, '"X1:Z" is not registered')
    })
  )

  it.effect("registrations belong to one connection", () =>
    Effect.gen(function* () {
      yield* run(nds1, [["register_chan", ["X1:A", 16, 4, 0, 0, "", 1, 1, 0]]])
      const other = yield* Effect.flip(run(nds1, [["gen_sc3_12_1", ["X1:A"]]]))
      assert.strictEqual(other._tag, "ActionFailed")
    })
  )

  it.effect("a value out of the channel type's range fails the step", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(run(nds1, [...registrations, ["write-data", ["X1:I16", 1, 40000]]]))
      assert.include(error.message, "out of range")
      const complex = yield* Effect.flip(run(nds1, [...registrations, ["write-data", ["X1:C8", 1, 0]]]))
      assert.include(complex.message, "complex_8")
    })
  )
})

describe("nds1 arguments, checked at load time", () => {
  it("wrong counts name the arguments the action takes", () => {
    assert.strictEqual(
      refusal(nds1, "register_chan", ["X1:A", 16, 4]),
      "takes 9 arguments (name rate type tp_num group unit gain slope offset), got 3"
    )
    assert.strictEqual(refusal(nds1, "gen_sc3_12_1", []), "takes 1 argument (channel), got 0")
    assert.strictEqual(refusal(nds1, "gen_sc2_12_1", []), "takes at least 1 argument (channel…), got 0")
    assert.strictEqual(refusal(nds1, "termination-block", [1]), "takes 0 arguments (none), got 1")
    assert.include(refusal(nds1, "termination-block", [new Uint8Array([1])]), "a response on the step")
    assert.strictEqual(
      refusal(nds1, "data-header", [["X1:A"], 1, 1]),
      "takes 4 arguments (channels gps stride sequence), got 3"
    )
  })

  it("wrong types name the argument", () => {
    assert.strictEqual(
      refusal(nds1, "register_chan", ["X1:A", "16", 4, 0, 0, "", 1, 1, 0]),
      'argument 2 (rate) must be a rate in Hz (an unsigned 32-bit integer); got "16"'
    )
    assert.include(refusal(nds1, "register_chan", ["X1:A", 16, 9, 0, 0, "", 1, 1, 0]), "argument 3 (type)")
    assert.include(refusal(nds1, "register_chan", ["X1:A", 16, 4, 0, 70000, "", 1, 1, 0]), "argument 5 (group)")
    assert.include(refusal(nds1, "register_chan", ["X1:A", 16, 4, 0, 0, "", "x", 1, 0]), "argument 7 (gain)")
    assert.include(
      refusal(nds1, "reconfigure-block", ["X1:A"]),
      "argument 1 (channels) must be a list of channel names"
    )
    assert.include(refusal(nds1, "write-data", ["X1:A", -1, 0]), "argument 2 (count)")
    assert.include(refusal(nds1, "writer-id", [-1, true]), "argument 1 (id)")
    assert.include(refusal(nds1, "handle_start_net_writer_full", ["2"]), "argument 1 (count)")
    assert.include(refusal(nds1, "no_such_action", []), 'no action "no_such_action"')
  })

  it("numbers given as text are written as given", () => {
    assert.strictEqual(refusal(nds1, "register_chan", ["X1:A", 16, 4, 0, 0, "", "1.000", "1e0", "-0"]), "(accepted)")
  })
})

describe("Python's float text", () => {
  it("matches Python's str() of floats", () => {
    const cases: ReadonlyArray<readonly [number, string]> = [
      [1, "1.0"],
      [-1.5, "-1.5"],
      [0, "0.0"],
      [0.1, "0.1"],
      [1e-5, "1e-05"],
      [0.0001, "0.0001"],
      [1.5e-7, "1.5e-07"],
      [1e16, "1e+16"],
      [1234567890123456, "1234567890123456.0"],
      [12345.678, "12345.678"],
      [3.0517578125e-5, "3.0517578125e-05"],
      [1e22, "1e+22"]
    ]
    for (const [x, text] of cases) assert.strictEqual(pythonFloat(x), text, String(x))
  })
})
