// IPv4 addresses and subnets, checked the way the engine will check them, so a bad one is refused when the file is
// read (with its YAML path) instead of by Docker halfway through `up`.

/** The 32-bit value of a dotted quad, or undefined when it is not one (octets 0–255, no leading zeros). */
export const parseAddress = (text: string): number | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4) return undefined
  let value = 0
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined
    const octet = Number(part)
    if (octet > 255) return undefined
    value = value * 256 + octet
  }
  return value
}

export interface Subnet {
  readonly network: number
  readonly prefix: number
}

/** The dotted quad of a 32-bit value. */
export const formatAddress = (value: number): string =>
  [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".")

/** A subnet `a.b.c.d/n` (n 0–32, no host bits set), or the reason it is not one. */
export const parseSubnet = (text: string): Subnet | string => {
  const slash = text.indexOf("/")
  const address = parseAddress(slash < 0 ? text : text.slice(0, slash))
  const prefixText = slash < 0 ? "" : text.slice(slash + 1)
  if (address === undefined || !/^\d{1,2}$/.test(prefixText)) return "expected an IPv4 subnet a.b.c.d/n"
  const prefix = Number(prefixText)
  if (prefix > 32) return `prefix /${prefix} is longer than 32 bits`
  // Unsigned arithmetic: bit operators would turn 10.0.0.0 and up into negative numbers.
  const network = address - (address % 2 ** (32 - prefix))
  if (network !== address) return `host bits are set: the subnet is ${formatAddress(network)}/${prefix}`
  return { network, prefix }
}

export const contains = (subnet: Subnet, address: number): boolean =>
  address - (address % 2 ** (32 - subnet.prefix)) === subnet.network
