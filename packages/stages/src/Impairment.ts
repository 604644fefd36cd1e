/**
 * Link impairments, as written in a stage file or on the command line: rate (`2mbit`), loss (`5%`), delay, jitter,
 * reordering, duplication and corruption, a link taken down, or a schedule of flaps. Decoded into numbers once,
 * here (bits per second, percents, milliseconds), so nothing downstream parses text again.
 */
import { Duration, Option, Schema, SchemaTransformation } from "effect"

const units: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, bps: 8, kbps: 8e3, mbps: 8e6 }
const ratePattern = /^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps)$/i

/** A rate as tc writes it (SI: `kbit` = 1000 bit/s; `kbps` = 1000 bytes/s), decoded to bits per second. */
export const Rate = Schema.String.check(
  Schema.makeFilter((s: string) => {
    const m = ratePattern.exec(s.trim())
    if (m === null) return "expected a rate such as 2mbit, 500kbit, 1gbit or 100kbps"
    const bits = Number(m[1]) * (units[(m[2] ?? "").toLowerCase()] ?? 0)
    return bits >= 8 && bits <= 100e9 ? undefined : "a rate between 8bit and 100gbit"
  })
).pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform({
      decode: (s: string) => {
        const m = ratePattern.exec(s.trim())
        return Number(m?.[1]) * (units[(m?.[2] ?? "").toLowerCase()] ?? 0)
      },
      encode: (bits: number) => `${bits}bit`
    })
  )
)

/** `5%` or `0.5%` (or a bare number), 0–100, decoded to the percentage: as typed on a command line. */
export const PercentText = Schema.String.check(
  Schema.makeFilter((v: string) => {
    const n = /^\d+(\.\d+)?%?$/.test(v.trim()) ? Number.parseFloat(v) : Number.NaN
    return n >= 0 && n <= 100 ? undefined : "expected a percentage 0–100 (5%, 0.5%)"
  })
).pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform({ decode: (v: string) => Number.parseFloat(v), encode: (n: number) => `${n}%` })
  )
)

/** A percentage in a file: `5%` or a plain number, 0–100. */
export const Percent = Schema.Union([PercentText, Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 100 }))])

const shortDuration = /^(\d+(?:\.\d+)?)\s*(us|ms|s)$/
const factor: Record<string, number> = { us: 0.001, ms: 1, s: 1000 }

const millisOf = (s: string): number | undefined => {
  const m = shortDuration.exec(s.trim())
  if (m !== null) return Number(m[1]) * (factor[m[2] ?? ""] ?? 0)
  const d = Duration.fromInput(s as Duration.Input)
  return Option.isSome(d) && Duration.isFinite(d.value) ? Duration.toMillis(d.value) : undefined
}

/** A time as tc writes it (`20ms`, `1.5s`, `500us`) or as testbed does (`20 millis`), decoded to milliseconds. */
export const Millis = Schema.String.check(
  Schema.makeFilter((s: string) => {
    const ms = millisOf(s)
    return ms !== undefined && ms >= 0 && ms <= 3_600_000 ? undefined : "expected a time such as 20ms or 2 seconds"
  })
).pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform({ decode: (s: string) => millisOf(s) ?? 0, encode: (ms: number) => `${ms}ms` })
  )
)

/** Down for `down`, then up for `up`, `count` times; the link is left up at the end (and when interrupted). */
export const Flap = Schema.Struct({
  down: Millis,
  up: Millis,
  count: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))
})
export type Flap = typeof Flap.Type

/** What one link end (or network attachment) suffers; applying a new one replaces the old one whole. */
export const Settings = Schema.Struct({
  rate: Schema.optionalKey(Rate),
  loss: Schema.optionalKey(Percent),
  delay: Schema.optionalKey(Millis),
  jitter: Schema.optionalKey(Millis),
  reorder: Schema.optionalKey(Percent),
  duplicate: Schema.optionalKey(Percent),
  corrupt: Schema.optionalKey(Percent),
  down: Schema.optionalKey(Schema.Boolean),
  /** Measure what was achieved between the two ends and fail when it is off by more than the tolerance. */
  verify: Schema.optionalKey(Schema.Boolean)
})
export type Settings = typeof Settings.Type
export type SettingsEncoded = typeof Settings.Encoded

/** `NODE:IFACE`: a link's interface name, a network the node is attached to, or an interface of the node. */
export const Target = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}:[A-Za-z0-9_.-]{1,63}$/, {
    message: "expected NODE:INTERFACE (an interface of a link, or a network the node is attached to)"
  })
)

/** An impairment in the stage file: applied when the stage comes up. */
export const Declared = Schema.Struct({ target: Target, ...Settings.fields })
export type Declared = typeof Declared.Type

export const splitTarget = (target: string): { readonly node: string; readonly iface: string } => {
  const at = target.indexOf(":")
  return { node: target.slice(0, at), iface: target.slice(at + 1) }
}

/** The settings that only netem can apply (the kernel module `sch_netem`). */
export const netemSettings = ["delay", "jitter", "reorder", "duplicate", "corrupt"] as const

export const needsNetem = (s: Settings): boolean => netemSettings.some((k) => s[k] !== undefined)

/** Settings that change nothing: applying them clears the end. */
export const isClear = (s: Settings): boolean =>
  s.rate === undefined && s.loss === undefined && !needsNetem(s) && s.down !== true

/** `rate 2mbit, loss 5%`: the settings in tc's words, for messages, status and the graph. */
export const describe = (s: Settings): string => {
  const parts: Array<string> = []
  if (s.rate !== undefined) parts.push(`rate ${formatRate(s.rate)}`)
  if (s.loss !== undefined) parts.push(`loss ${s.loss}%`)
  if (s.delay !== undefined) parts.push(`delay ${s.delay}ms${s.jitter === undefined ? "" : ` ±${s.jitter}ms`}`)
  else if (s.jitter !== undefined) parts.push(`jitter ${s.jitter}ms`)
  if (s.reorder !== undefined) parts.push(`reorder ${s.reorder}%`)
  if (s.duplicate !== undefined) parts.push(`duplicate ${s.duplicate}%`)
  if (s.corrupt !== undefined) parts.push(`corrupt ${s.corrupt}%`)
  if (s.down === true) parts.push("down")
  return parts.length === 0 ? "none" : parts.join(", ")
}

export const formatRate = (bits: number): string => {
  const [scale, unit] =
    bits >= 1e9 ? [1e9, "gbit"] : bits >= 1e6 ? [1e6, "mbit"] : bits >= 1e3 ? [1e3, "kbit"] : [1, "bit"]
  return `${Number((bits / scale).toFixed(3))}${unit}`
}

/** A flap schedule as typed on a command line: `DOWN,UP,COUNT`, e.g. `2s,3s,5`. */
export const FlapSpec = Schema.String.check(
  Schema.isPattern(/^[^,]+,[^,]+,\d+$/, { message: "expected DOWN,UP,COUNT, e.g. 2s,3s,5" })
).pipe(
  Schema.decodeTo(
    Schema.Struct({ down: Schema.String, up: Schema.String, count: Schema.String }),
    SchemaTransformation.transform({
      decode: (s: string) => {
        const [down = "", up = "", count = ""] = s.split(",").map((p) => p.trim())
        return { down, up, count }
      },
      encode: (f: { readonly down: string; readonly up: string; readonly count: string }) =>
        `${f.down},${f.up},${f.count}`
    })
  ),
  Schema.decodeTo(
    Flap,
    SchemaTransformation.transform({
      decode: (f: { readonly down: string; readonly up: string; readonly count: string }) => ({
        down: f.down,
        up: f.up,
        count: Number(f.count)
      }),
      encode: (f: typeof Flap.Encoded) => ({ down: f.down, up: f.up, count: String(f.count) })
    })
  )
)
