/**
 * The bytes the older `nds2` action module wrote (see COMPAT-NDS-MODULES.md), as pure functions of registered
 * channels and the action's arguments. Big-endian throughout.
 */
import { Result } from "effect"
import { sample } from "./Nds1Format.ts"
import { concat, f32, hex, i32, padLeft, pythonNumber, readU32, repeat, text, u16, u32 } from "./Wire.ts"

export const dataTypes = ["int_2", "int_4", "int_8", "real_4", "real_8", "complex_8", "uint_4"] as const
export type DataType = (typeof dataTypes)[number]
export const channelTypes = ["online", "raw", "reduced", "s-trend", "m-trend", "test-pt", "static", "simdata"] as const
export type ChannelType = (typeof channelTypes)[number]

/** The codes of the wire: int_2 1 … uint_4 7 (the NDS1 codes), online 1 … simdata 8. */
export const dataTypeCode = (t: DataType): 1 | 2 | 3 | 4 | 5 | 6 | 7 =>
  (dataTypes.indexOf(t) + 1) as 1 | 2 | 3 | 4 | 5 | 6 | 7
export const channelTypeCode = (t: ChannelType): number => channelTypes.indexOf(t) + 1

// The older module's reconfigure-block knew no uint_4 (it listed int_4 twice and failed); it is 4 bytes.
export const bytesPerSample = (t: DataType): number =>
  t === "int_2" ? 2 : t === "int_8" || t === "real_8" || t === "complex_8" ? 8 : 4

/** A channel as `register_chan` gives it. */
export interface Channel {
  readonly name: string
  readonly channelType: ChannelType
  /** A number, or text written as given by `get-channels`. */
  readonly rate: number | string
  readonly dataType: DataType
  readonly units: string
}

export const defaultUnits = "undef"

const rateValue = (c: Channel): number => (typeof c.rate === "string" ? Number(c.rate) : c.rate)

/** u32 count; per channel u32 length then `"<name> <channel_type> <rate> <data_type>\0"`. */
export const getChannels = (channels: ReadonlyArray<Channel>): Uint8Array =>
  concat([
    u32(channels.length),
    ...channels.flatMap((c) => {
      const rate = typeof c.rate === "string" ? c.rate : pythonNumber(c.rate)
      const line = text(`${c.name} ${c.channelType} ${rate} ${c.dataType}\0`)
      return [u32(line.length), line]
    })
  ])

/** The hex of the id's decimal text, left-padded with '0' to 8 bytes, then the offline flag. */
export const writerId = (id: string | number, online: boolean): Uint8Array =>
  concat([text(padLeft(hex(text(typeof id === "number" ? pythonNumber(id) : id)), 8, "0")), u32(online ? 0 : 1)])

/** Seconds of data in a block of `stride`: -1 means 1/16 s (the online 16 Hz blocks). */
const seconds = (stride: number): number => (stride === -1 ? 1 / 16 : stride)

const samples = (c: Channel, stride: number): number => Math.trunc(seconds(stride) * rateValue(c))

export const reconfigureBlock = (
  channels: ReadonlyArray<Channel>,
  stride: number
): Result.Result<Uint8Array, string> => {
  const units = channels.map((c) => text(c.units))
  const length = 16 + 24 * channels.length + units.reduce((n, u) => n + 4 + u.length, 0)
  const entries: Array<Uint8Array> = []
  let offset = 0
  for (let i = 0; i < channels.length; i++) {
    const c = channels[i]!
    const status = bytesPerSample(c.dataType) * samples(c, stride)
    entries.push(
      u32(status),
      u32(offset),
      u16(channelTypeCode(c.channelType)),
      u16(dataTypeCode(c.dataType)),
      f32(rateValue(c)),
      f32(0),
      f32(1),
      u32(units[i]!.length),
      units[i]!
    )
    offset += status
  }
  if (offset > 0xffffffff || length > 0xffffffff) return Result.fail("the block does not fit in 32-bit sizes")
  return Result.succeed(concat([u32(length), u32(0xffffffff), u32(1), u32(2), u32(3), ...entries]))
}

export const dataHeader = (
  channels: ReadonlyArray<Channel>,
  gps: number,
  stride: number,
  sequence: number,
  cycle: number
): Result.Result<Uint8Array, string> => {
  const size = channels.reduce((n, c) => n + bytesPerSample(c.dataType) * samples(c, stride), 16)
  if (size > 0xffffffff) return Result.fail(`the block size ${size} does not fit in 32 bits`)
  // A 1/16 s block says stride 1; its cycle within the second is in the nanoseconds. Other strides have none.
  const nanoseconds = stride === -1 ? cycle * 62_500_000 : 0
  return Result.succeed(concat([u32(size), i32(stride === -1 ? 1 : stride), u32(gps), u32(nanoseconds), u32(sequence)]))
}

export const writeData = (t: DataType, count: number, value: number): Result.Result<Uint8Array, string> =>
  Result.map(sample(dataTypeCode(t), value), (one) => repeat(one, count))

export const revisionRequest = "server-protocol-revision 6;\n"
export const revisionAnswer = (): Uint8Array => concat([text("0000"), u32(6)])

/**
 * A get-data answer recorded from an NDS2 1.5 server, made current: the status and writer id (16 bytes) pass
 * through; each reconfigure block (second word 0xffffffff) gets units `undef` (u32 5, "undef") after each of
 * its 24-byte channel entries, its length grown to match; data blocks pass through unchanged. Fails, naming
 * the offset, where the bytes are not such an answer (the older module wrote garbage or crashed there).
 */
export const translateGetDataBlock = (source: Uint8Array): Result.Result<Uint8Array, string> => {
  if (source.length < 16)
    return Result.fail(`the recorded answer has ${source.length} byte(s); it needs at least 16 (status and writer id)`)
  const units = text(defaultUnits)
  const unitData = concat([u32(units.length), units])
  const out: Array<Uint8Array> = [source.subarray(0, 16)]
  let at = 16
  while (at < source.length) {
    if (source.length - at < 8) {
      return Result.fail(
        `the recorded answer ends inside a block header at offset ${at} (${source.length - at} byte(s) left)`
      )
    }
    const length = readU32(source, at)
    if (readU32(source, at + 4) !== 0xffffffff) {
      // A data block; a last one cut short by the recording passes through as it is, as it did before.
      const end = Math.min(source.length, at + 4 + length)
      out.push(source.subarray(at, end))
      at = end
      continue
    }
    if (length < 16 || (length - 16) % 24 !== 0) {
      return Result.fail(`the reconfigure block at offset ${at} has length ${length}, not 16 + 24 per channel`)
    }
    if (at + 4 + length > source.length) {
      return Result.fail(
        `the reconfigure block at offset ${at} is cut short (${length} byte(s) announced, ${source.length - at - 4} left)`
      )
    }
    const count = (length - 16) / 24
    out.push(u32(length + count * unitData.length), source.subarray(at + 4, at + 20))
    for (let i = 0; i < count; i++) out.push(source.subarray(at + 20 + 24 * i, at + 44 + 24 * i), unitData)
    at += 4 + length
  }
  return Result.succeed(concat(out))
}
