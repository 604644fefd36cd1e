// Golden bytes of every nds2 action, computed by hand from the format table of COMPAT-NDS-MODULES.md.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { module as nds2 } from "../src/nds/Nds2.ts"
import { ascii, type Call, hex, refusal, run } from "./NdsHarness.ts"

// 1: X1:A online 16 Hz real_4 (units default "undef"); 2: X1:B raw 256 Hz int_2 in V; "c": a 0.5 Hz s-trend.
const registrations: ReadonlyArray<Call> = [
  ["register_chan", [1, "X1:A", "online", 16, "real_4"]],
  ["register_chan", [2, "X1:B", "raw", 256, "int_2", "V"]],
  ["register_chan", ["c", "X1:C", "s-trend", 0.5, "real_8", "m"]],
  ["register_chan", [4, "X1:D", "test-pt", "16.0", "int_8", ""]],
  ["register_chan", [5, "X1:E", "m-trend", 1, "uint_4"]],
  ["register_chan", [6, "X1:F", "static", 1, "int_4"]],
  ["register_chan", [7, "X1:G", "simdata", 1, "complex_8"]]
]

// A recorded NDS2 1.5 get-data answer: status and writer id, a reconfigure block entry, a data block.
const writer = "30303030 3030303030303031 00000001" // "0000", writer id "00000001", offline
const channelEntry = "00000040 00000000 0001 0004 41800000 00000000 3f800000" // no units in 1.5
const dataBlock = "00000018 00000001 3b9aca00 00000000 00000000 0000000000000001" // 16 + 8 bytes of data

const answer = (calls: ReadonlyArray<Call>, input = "") =>
  Effect.map(run(nds2, [...registrations, ...calls], input), (r) => r.output)

describe("nds2 golden bytes", () => {
  it.effect("register_chan writes nothing", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* answer([]), "")
    })
  )

  it.effect("get-channels: count, then per channel its length and '<name> <type> <rate> <data type>\\0'", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([["get-channels", [1, 2, "c", 4]]]),
        hex(
          "00000004", // 4 channels
          "00000016", // 22 bytes:
          "58313a41 20 6f6e6c696e65 20 3136 20 7265616c5f34 00", // "X1:A online 16 real_4\0"
          "00000013", // 19 bytes:
          "58313a42 20 726177 20 323536 20 696e745f32 00", // "X1:B raw 256 int_2\0"
          "00000018", // 24 bytes:
          "58313a43 20 732d7472656e64 20 302e35 20 7265616c5f38 00", // "X1:C s-trend 0.5 real_8\0"
          "00000018", // 24 bytes: the rate given as text "16.0" is written as given
          "58313a44 20 746573742d7074 20 31362e30 20 696e745f38 00" // "X1:D test-pt 16.0 int_8\0"
        )
      )
    })
  )

  it.effect("writer-id: the hex of the id's decimal text, padded to 8, then u32 offline flag", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([
          ["writer-id", [12, true]],
          ["writer-id", ["ab", "offline"]],
          ["writer-id", [12345, "online"]]
        ]),
        hex(
          "30303030 33313332 00000000", // "12" → "3132" → "00003132"; online
          "30303030 36313632 00000001", // "ab" → "6162" → "00006162"; offline
          "33313332 33333334 3335 00000000" // "12345" → "3132333435" (10 digits, never cut); online
        )
      )
    })
  )

  const entryA = (status: string, offset: string) =>
    hex(status, offset, "0001 0004", "41800000 00000000 3f800000", "00000005", ascii("undef"))
  const entryB = (status: string, offset: string) =>
    hex(status, offset, "0002 0001", "43800000 00000000 3f800000", "00000001", ascii("V"))

  it.effect("reconfigure-block: header, then per channel status, offset, codes, rate, 0.0, 1.0, units", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([["reconfigure-block", [[1, 2], 1]]]),
        hex(
          "0000004e", // 16 + 24·2 + (4 + 5) + (4 + 1) = 78
          "ffffffff 00000001 00000002 00000003",
          // X1:A: 4 bytes · 16 samples = 64, offset 0, online 1, real_4 4, f32 16.0 (exponent 131), 0.0, 1.0, "undef"
          entryA("00000040", "00000000"),
          // X1:B: 2 bytes · 256 samples = 512, offset 64, raw 2, int_2 1, f32 256.0 (exponent 135), 0.0, 1.0, "V"
          entryB("00000200", "00000040")
        )
      )
    })
  )

  it.effect("reconfigure-block with stride -1: statuses of a 1/16 s block", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([["reconfigure-block", [[1, 2], -1]]]),
        hex(
          "0000004e ffffffff 00000001 00000002 00000003",
          entryA("00000004", "00000000"), // 4 · int(16/16)
          entryB("00000020", "00000004") // 2 · int(256/16) = 32, after 4
        )
      )
    })
  )

  it.effect("reconfigure-block: every channel type and data type code", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([["reconfigure-block", [["c", 4, 5, 6, 7], 2]]]),
        hex(
          "000000ac", // 16 + 24·5 + (4 + 1) + (4 + 0) + (4 + 5)·3 = 172
          "ffffffff 00000001 00000002 00000003",
          // s-trend 4, real_8 5: 8 · int(2 · 0.5) = 8; f32 0.5; units "m"
          "00000008 00000000 0004 0005 3f000000 00000000 3f800000 00000001",
          ascii("m"),
          // test-pt 6, int_8 3: 8 · int(2 · 16.0) = 256, after 8; f32 16.0; no units
          "00000100 00000008 0006 0003 41800000 00000000 3f800000 00000000",
          // m-trend 5, uint_4 7: 4 · 2 = 8, after 264 (0x108)
          "00000008 00000108 0005 0007 3f800000 00000000 3f800000 00000005",
          ascii("undef"),
          // static 7, int_4 2: 4 · 2 = 8, after 272 (0x110)
          "00000008 00000110 0007 0002 3f800000 00000000 3f800000 00000005",
          ascii("undef"),
          // simdata 8, complex_8 6: 8 · 2 = 16, after 280 (0x118)
          "00000010 00000118 0008 0006 3f800000 00000000 3f800000 00000005",
          ascii("undef")
        )
      )
    })
  )

  it.effect("data-header: size, i32 stride, gps, nanoseconds, sequence", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([
          ["data-header", [[1, 2], 1000000000, 1, 7]],
          ["data-header", [[1, 2], 1000000000, -1, 7, 3]],
          ["data-header", [[1], 1000000000, 2, 0, 5]]
        ]),
        hex(
          "00000250 00000001 3b9aca00 00000000 00000007", // 16 + 4·16 + 2·256 = 592
          "00000034 00000001 3b9aca00 0b2d05e0 00000007", // 16 + 4·1 + 2·16 = 52; stride 1; 3 · 62,500,000 ns
          "00000090 00000002 3b9aca00 00000000 00000000" // 16 + 4·32 = 144; the cycle counts for stride -1 only
        )
      )
    })
  )

  it.effect("write-data: count copies of the value in the channel's data type", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* answer([
          ["write-data", [2, 3, -2]], // int_2
          ["write-data", [1, 2, 0.5]], // real_4
          ["write-data", ["c", 1, -2.5]], // real_8: sign 1, exponent 1024, mantissa .01b
          ["write-data", [4, 1, 256]], // int_8
          ["write-data", [5, 1, 3000000000]], // uint_4
          ["write-data", [6, 1, -3.9]] // int_4, truncated toward zero
        ]),
        hex("fffe fffe fffe", "3f000000 3f000000", "c004000000000000", "0000000000000100", "b2d05e00", "fffffffd")
      )
    })
  )

  it.effect("revision: reads the request, answers '0000' and u32 6", () =>
    Effect.gen(function* () {
      const result = yield* run(nds2, [["revision", []]], "server-protocol-revision 6;\nnext")
      assert.strictEqual(result.output, hex("30303030 00000006"))
      assert.strictEqual(result.unread, ascii("next"))
    })
  )

  it.effect("translate_nds2_1_5_get_data_block: units 'undef' added to each channel of reconfigure blocks", () =>
    Effect.gen(function* () {
      const recorded = Buffer.from(
        hex(
          writer,
          "00000028 ffffffff 00000001 00000002 00000003",
          channelEntry,
          dataBlock,
          "00000010 ffffffff 00000001 00000002 00000003"
        ),
        "hex"
      )
      assert.strictEqual(
        yield* answer([["translate_nds2_1_5_get_data_block", [new Uint8Array(recorded)]]]),
        hex(
          writer, // the first 16 bytes pass through
          "00000031 ffffffff 00000001 00000002 00000003", // 40 + (4 + 5) for one channel
          channelEntry,
          "00000005",
          ascii("undef"),
          dataBlock, // unchanged
          "00000010 ffffffff 00000001 00000002 00000003" // a reconfigure block of no channels: unchanged
        )
      )
    })
  )

  it.effect("translate: a last data block cut short by the recording passes through as it is", () =>
    Effect.gen(function* () {
      const recorded = Buffer.from(hex(writer, dataBlock.slice(0, -8)), "hex")
      assert.strictEqual(
        yield* answer([["translate_nds2_1_5_get_data_block", [new Uint8Array(recorded)]]]),
        recorded.toString("hex")
      )
    })
  )
})

describe("nds2 at run time", () => {
  it.effect("revision: a wrong byte is a ScriptMismatch at its offset", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(run(nds2, [["revision", []]], "server-protocol-revision 5;\n"))
      assert.strictEqual(error._tag, "ScriptMismatch")
      if (error._tag === "ScriptMismatch") assert.strictEqual(error.offset, "server-protocol-revision ".length)
    })
  )

  it.effect('ids are per connection, and 1 is not "1"', () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(run(nds2, [...registrations, ["get-channels", ["1"]]]))
      assert.strictEqual(error._tag, "ActionFailed")
      assert.include(error.message, 'channel "1" is not registered')
      const other = yield* Effect.flip(run(nds2, [["get-channels", [1]]]))
      assert.include(other.message, "channel 1 is not registered on this connection (registered: none)")
    })
  )

  it.effect("complex_8 samples have no encoding", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(run(nds2, [...registrations, ["write-data", [7, 1, 0]]]))
      assert.include(error.message, "complex_8")
    })
  )
})

describe("nds2 arguments, checked at load time", () => {
  it("wrong counts name the arguments the action takes", () => {
    assert.strictEqual(
      refusal(nds2, "register_chan", [1, "X1:A", "online", 16]),
      "takes 5 to 6 arguments (id name channel_type rate data_type [units]), got 4"
    )
    assert.strictEqual(refusal(nds2, "get-channels", []), "takes at least 1 argument (id…), got 0")
    assert.strictEqual(refusal(nds2, "revision", ["x"]), "takes 0 arguments (none), got 1")
    assert.strictEqual(
      refusal(nds2, "data-header", [[1], 1, 1]),
      "takes 4 to 5 arguments (ids gps stride sequence [cycle]), got 3"
    )
    assert.strictEqual(refusal(nds2, "translate_nds2_1_5_get_data_block", []), "takes 1 argument (recorded), got 0")
  })

  it("wrong types name the argument", () => {
    assert.include(
      refusal(nds2, "register_chan", [1, "X1:A", "online", 16, "real_16"]),
      "argument 5 (data_type) must be one of int_2"
    )
    assert.include(refusal(nds2, "register_chan", [1, "X1:A", "live", 16, "real_4"]), "argument 3 (channel_type)")
    assert.include(refusal(nds2, "register_chan", [1.5, "X1:A", "online", 16, "real_4"]), "argument 1 (id)")
    assert.include(refusal(nds2, "register_chan", [1, "X1:A", "online", -16, "real_4"]), "argument 4 (rate)")
    assert.include(refusal(nds2, "reconfigure-block", [[1], -2]), "argument 2 (stride)")
    assert.include(refusal(nds2, "data-header", [[1], 1, -1, 0, 16]), "argument 5 (cycle)")
    assert.include(refusal(nds2, "translate_nds2_1_5_get_data_block", ["00"]), "argument 1 (recorded)")
  })

  it("recorded bytes that are not a get-data answer are refused at load time, naming the offset", () => {
    const bytes = (...groups: ReadonlyArray<string>) => new Uint8Array(Buffer.from(hex(...groups), "hex"))
    assert.include(refusal(nds2, "translate_nds2_1_5_get_data_block", [bytes("30303030")]), "at least 16")
    assert.include(
      refusal(nds2, "translate_nds2_1_5_get_data_block", [
        bytes(writer, "00000029 ffffffff 00000001 00000002 00000003")
      ]),
      "reconfigure block at offset 16 has length 41"
    )
    assert.include(
      refusal(nds2, "translate_nds2_1_5_get_data_block", [
        bytes(writer, "00000028 ffffffff 00000001 00000002 00000003")
      ]),
      "cut short"
    )
    assert.include(
      refusal(nds2, "translate_nds2_1_5_get_data_block", [bytes(writer, "000000")]),
      "inside a block header at offset 16"
    )
  })
})
