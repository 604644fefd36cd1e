/**
 * The numbers and text of the NDS wire formats: fixed-width integers and IEEE floats (big-endian, "network
 * order", unless a name says `Le`), and numbers written as text the way the older Python modules wrote them.
 */

const fixed = (size: number, write: (view: DataView) => void): Uint8Array => {
  const bytes = new Uint8Array(size)
  write(new DataView(bytes.buffer))
  return bytes
}

export const u16 = (n: number): Uint8Array => fixed(2, (v) => v.setUint16(0, n, false))
export const i16 = (n: number): Uint8Array => fixed(2, (v) => v.setInt16(0, n, false))
export const u32 = (n: number): Uint8Array => fixed(4, (v) => v.setUint32(0, n, false))
export const i32 = (n: number): Uint8Array => fixed(4, (v) => v.setInt32(0, n, false))
export const i64 = (n: bigint): Uint8Array => fixed(8, (v) => v.setBigInt64(0, n, false))
export const f32 = (x: number): Uint8Array => fixed(4, (v) => v.setFloat32(0, x, false))
export const f64 = (x: number): Uint8Array => fixed(8, (v) => v.setFloat64(0, x, false))
export const u32Le = (n: number): Uint8Array => fixed(4, (v) => v.setUint32(0, n, true))
export const f32Le = (x: number): Uint8Array => fixed(4, (v) => v.setFloat32(0, x, true))

/** Reads a big-endian u32 (the caller checks the bounds). */
export const readU32 = (bytes: Uint8Array, at: number): number =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at, false)

export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/** `count` copies of `unit`, end to end. */
export const repeat = (unit: Uint8Array, count: number): Uint8Array => {
  const out = new Uint8Array(unit.length * count)
  for (let i = 0; i < count; i++) out.set(unit, i * unit.length)
  return out
}

const encoder = new TextEncoder()
export const text = (s: string): Uint8Array => encoder.encode(s)

/** Lower-case hex digits of the bytes (Python's `binascii.hexlify`). */
export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

/** `s` left-padded with `fill` to at least `width` characters, never cut (Python's `"{:>0N}"`). */
export const padLeft = (s: string, width: number, fill: string): string => s.padStart(width, fill)
/** `s` right-padded with spaces to at least `width` characters, never cut. */
export const padRight = (s: string, width: number): string => s.padEnd(width, " ")

/**
 * Python's `str(x)` of a float: the shortest digits that read back as `x` (as JavaScript's), but always with a
 * decimal point in positional notation ("1.0"), and scientific notation below 1e-4 or from 1e16 on, with a
 * two-digit exponent at least ("1e-05", "1.5e+16").
 */
export const pythonFloat = (x: number): string => {
  if (Number.isNaN(x)) return "nan"
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf"
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0"
  const [mantissa = "", exponent = "0"] = x.toExponential().split("e")
  const sign = mantissa.startsWith("-") ? "-" : ""
  const digits = mantissa.replace("-", "").replace(".", "")
  const exp = Number(exponent)
  if (exp < -4 || exp >= 16) {
    const rest = digits.length > 1 ? `.${digits.slice(1)}` : ""
    return `${sign}${digits[0]}${rest}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`
  const whole = digits.slice(0, exp + 1).padEnd(exp + 1, "0")
  return `${sign}${whole}.${digits.slice(exp + 1) || "0"}`
}

/** Python's `str(x)` of a number that may be an int: integers without a decimal point, others as floats. */
export const pythonNumber = (x: number): string => (Number.isSafeInteger(x) ? String(x) : pythonFloat(x))
