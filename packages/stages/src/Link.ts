/**
 * Point-to-point links: a veth pair between two nodes' network namespaces, each end with an interface name and an
 * optional address (`10.0.0.1/30`). Created from the host inside the nodes' own namespaces when the stage comes
 * up, so a link lives exactly as long as its nodes: nothing of it is ever on the host.
 */
import { Schema } from "effect"
import { parseAddress } from "./internal/ipv4.ts"

/** An interface address with its prefix, `a.b.c.d/n`; host bits are what make it an address. */
export const InterfaceAddress = Schema.String.check(
  Schema.makeFilter((s: string) => {
    const [address = "", prefix = "", ...rest] = s.split("/")
    return parseAddress(address) !== undefined && /^([0-9]|[12][0-9]|3[0-2])$/.test(prefix) && rest.length === 0
      ? undefined
      : "expected an interface address a.b.c.d/n (e.g. 10.0.0.1/30)"
  })
)

/** Interface names inside a node: at most 15 characters (IFNAMSIZ), no `/`. */
export const InterfaceName = Schema.String.check(
  Schema.isPattern(/^[A-Za-z][A-Za-z0-9_.-]{0,14}$/, {
    message: "an interface name is 1–15 letters, digits, '.', '_' or '-', starting with a letter"
  })
)

export const End = Schema.Struct({
  node: Schema.String,
  interface: InterfaceName,
  address: Schema.optionalKey(InterfaceAddress)
})
export type End = typeof End.Type

export const Link = Schema.Struct({
  a: End,
  b: End,
  /** Bytes per frame on both ends; default the kernel's (1500). */
  mtu: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 68, maximum: 65535 })))
})
export type Link = typeof Link.Type

/** `node:interface`, the name of a link end in impairments, checks and the graph. */
export const endName = (end: End): string => `${end.node}:${end.interface}`
