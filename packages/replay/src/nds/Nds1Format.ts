/**
 * The bytes the older `nds1` action module wrote (see COMPAT-NDS-MODULES.md), as pure functions of a
 * registered channel and the action's arguments. Big-endian unless a comment says otherwise.
 */
import { Result } from "effect"
import {
  concat,
  f32,
  f32Le,
  f64,
  hex,
  i16,
  i32,
  i64,
  padLeft,
  padRight,
  pythonFloat,
  repeat,
  text,
  u16,
  u32,
  u32Le
} from "./Wire.ts"

/** A channel as `register_chan` gives it; `type` is the data type code. */
export interface Channel {
  readonly name: string
  readonly rate: number
  readonly type: DataType
  readonly tpNum: number
  readonly group: number
  readonly unit: string
  /** A number, or text written as given by `gen_sc3_12_1`. */
  readonly gain: number | string
  readonly slope: number | string
  readonly offset: number | string
}

/** int_2 1, int_4 2, int_8 3, real_4 4, real_8 5, complex_8 6, uint_4 7. */
export type DataType = 1 | 2 | 3 | 4 | 5 | 6 | 7
export const dataTypes: ReadonlyArray<DataType> = [1, 2, 3, 4, 5, 6, 7]

export const bytesPerSample = (type: DataType): number =>
  type === 1 ? 2 : type === 3 || type === 5 || type === 6 ? 8 : 4

const floatText = (x: number | string): string => (typeof x === "string" ? x : pythonFloat(x))
const floatValue = (x: number | string): number => (typeof x === "string" ? Number(x) : x)

/** `status channels 3` for one channel: its nine fields, each followed by a newline. */
export const statusChannels3 = (c: Channel): Uint8Array =>
  text(
    [c.name, String(c.rate), String(c.type), String(c.tpNum), String(c.group), c.unit]
      .concat([c.gain, c.slope, c.offset].map(floatText))
      .map((field) => `${field}\n`)
      .join("")
  )

/** `status channels 2` for one channel: fixed-width text, the numbers as hex of their big-endian bytes. */
export const statusChannels2 = (c: Channel): Uint8Array =>
  text(
    padRight(c.name, 60) +
      hex(u32(c.rate)) +
      hex(u32(c.tpNum)) +
      hex(u16(c.group)) +
      hex(u16(c.type)) +
      hex(f32(floatValue(c.gain))) +
      hex(f32(floatValue(c.slope))) +
      hex(f32(floatValue(c.offset))) +
      padRight(c.unit, 40)
  )

/** The writer id as 8 (or more) hex digits of the number, then the offline flag. */
export const writerId = (id: number, online: boolean): Uint8Array =>
  concat([text(padLeft(id.toString(16), 8, "0")), u32(online ? 0 : 1)])

/** Length, four header words, then per channel (little-endian!) offset 0.0, the slope, status 0. */
export const reconfigureBlock = (channels: ReadonlyArray<Channel>): Uint8Array =>
  concat([
    u32(16 + 12 * channels.length),
    u32(0xffffffff),
    u32(0xffffffff),
    u32(3),
    u32(0xffffffff),
    ...channels.flatMap((c) => [f32Le(0), f32Le(floatValue(c.slope)), u32Le(0)])
  ])

/** Bytes of data in a block of these channels, header words included. */
export const blockSize = (channels: ReadonlyArray<Channel>, stride: number): number =>
  channels.reduce((size, c) => size + bytesPerSample(c.type) * c.rate * stride, 16)

export const dataHeader = (
  channels: ReadonlyArray<Channel>,
  gps: number,
  stride: number,
  sequence: number
): Result.Result<Uint8Array, string> => {
  const size = blockSize(channels, stride)
  if (size > 0xffffffff) return Result.fail(`the block size ${size} does not fit in 32 bits`)
  return Result.succeed(concat([u32(size), u32(stride), u32(gps), u32(0), u32(sequence)]))
}

const intIn = (min: number, max: number, encode: (n: number) => Uint8Array) => (x: number) => {
  const n = Math.trunc(x)
  return n < min || n > max ? Result.fail(`${x} is out of range for the channel's type`) : Result.succeed(encode(n))
}

const i64In = (x: number): Result.Result<Uint8Array, string> => {
  const n = BigInt(Math.trunc(x))
  return n < -(1n << 63n) || n >= 1n << 63n
    ? Result.fail(`${x} is out of range for the channel's type`)
    : Result.succeed(i64(n))
}

/** One sample of `value` as the data type stores it (integers truncate toward zero, as Python's int()). */
export const sample = (type: DataType, value: number): Result.Result<Uint8Array, string> => {
  switch (type) {
    case 1:
      return intIn(-0x8000, 0x7fff, i16)(value)
    case 2:
      return intIn(-0x80000000, 0x7fffffff, i32)(value)
    case 3:
      return i64In(value)
    case 4:
      return Result.succeed(f32(value))
    case 5:
      return Result.succeed(f64(value))
    case 7:
      return intIn(0, 0xffffffff, u32)(value)
    case 6:
      return Result.fail("write-data has no encoding for complex_8 (type 6) samples")
  }
}

export const writeData = (type: DataType, count: number, value: number): Result.Result<Uint8Array, string> =>
  Result.map(sample(type, value), (one) => repeat(one, count))

/** Five u32: 16 then zeros. */
export const terminationBlock = (): Uint8Array => concat([u32(16), u32(0), u32(0), u32(0), u32(0)])

// `start net-writer START DURATION {"CHANNEL"};` — the one request handle_start_net_writer_full answers.

export const netWriterPrefix = "start net-writer "

export interface NetWriterRequest {
  readonly start: number
  readonly duration: number
  readonly channel: string
}

/** Where a request line left the grammar: the offset of the byte, and what would have been right there. */
export interface Divergence {
  readonly offset: number
  readonly wanted: string
}

const isDigit = (b: number) => b >= 0x30 && b <= 0x39
// The older module's pattern: [A-Z:A-Za-z\-_0-9]+
const isChannelByte = (b: number) =>
  isDigit(b) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x3a || b === 0x2d || b === 0x5f

/**
 * Parses the rest of a request line after `start net-writer ` (the newline included): the first byte outside
 * the grammar is a divergence, reported at its offset in `rest`.
 */
export const parseNetWriter = (rest: Uint8Array): Result.Result<NetWriterRequest, Divergence> => {
  let at = 0
  const run = (accept: (b: number) => boolean) => {
    const from = at
    while (at < rest.length && accept(rest[at]!)) at++
    return Buffer.from(rest.subarray(from, at)).toString("latin1")
  }
  /** Matches `s` at `at`; on a difference, what was still wanted (after `alternative` when nothing matched). */
  const literal = (s: string, alternative: string): string | undefined => {
    for (let i = 0; i < s.length; i++, at++) {
      if (rest[at] !== s.charCodeAt(i)) return i === 0 && alternative !== "" ? `${alternative} or ${s}` : s.slice(i)
    }
    return undefined
  }
  const diverge = (wanted: string) => Result.fail({ offset: at, wanted })
  const start = run(isDigit)
  if (start === "") return diverge("<digit>")
  const space = literal(" ", "<digit>")
  if (space !== undefined) return diverge(space)
  const duration = run(isDigit)
  if (duration === "") return diverge("<digit>")
  const open = literal(' {"', "<digit>")
  if (open !== undefined) return diverge(open)
  const channel = run(isChannelByte)
  if (channel === "") return diverge("<channel name>")
  const close = literal('"};\n', "<channel name>")
  if (close !== undefined) return diverge(close)
  if (at !== rest.length) return diverge("(end of line)")
  return Result.succeed({ start: Number(start), duration: Number(duration), channel })
}
