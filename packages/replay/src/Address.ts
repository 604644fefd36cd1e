/**
 * Addresses as users write them on the command line, as the older tools took them (`-l`, `-r`): `HOST:PORT`,
 * `:PORT` or `PORT` (the default host), `[IPv6]:PORT`. Decoded once at the edge into a host and a port number.
 */
import { ExitCode } from "@testbed/events"
import { Effect, Runtime, Schema } from "effect"

export interface Address {
  readonly host: string
  /** 0 asks the system for a free port (where listening). */
  readonly port: number
}

export class AddressInvalid extends Schema.TaggedError<AddressInvalid>()("AddressInvalid", {
  address: Schema.String
}) {
  /** A flag or file value the user must fix. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `invalid address "${this.address}": expected HOST:PORT, :PORT or PORT`
  }
}

// Anchored, no nested quantifiers: linear in the length of the text.
const withHost = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/
const portOnly = /^()()(\d+)$/

/** `host:port`, `:port`, `port`, `[::1]:port`; a missing host is `defaultHost`. */
export const parse = (text: string, defaultHost = "127.0.0.1"): Effect.Effect<Address, AddressInvalid> => {
  const match = withHost.exec(text) ?? portOnly.exec(text)
  const port = match === null ? Number.NaN : Number(match[3])
  if (match === null || !Number.isInteger(port) || port > 65535)
    return Effect.fail(new AddressInvalid({ address: text }))
  return Effect.succeed({ host: match[1] || match[2] || defaultHost, port })
}
