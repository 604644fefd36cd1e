/** The cluster's Postgres could not be reached or used: infrastructure (exit 3), not the user's input. */
import { ExitCode } from "@testbed/events"
import { Effect, Runtime, Schema } from "effect"

export class ClusterUnavailable extends Schema.TaggedError<ClusterUnavailable>()("ClusterUnavailable", {
  reason: Schema.String
}) {
  override get message(): string {
    return `cluster database: ${this.reason}`
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
}

/** A `HOST:PORT` flag was not one. */
export class AddressInvalid extends Schema.TaggedError<AddressInvalid>()("AddressInvalid", {
  flag: Schema.String,
  value: Schema.String
}) {
  override get message(): string {
    return `${this.flag}: expected HOST:PORT (port 1-65535), got ${JSON.stringify(this.value)}`
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

/** Parses `HOST:PORT`. */
export const parseAddress = (flag: string, value: string) => {
  const match = /^(.+):(\d{1,5})$/.exec(value)
  const port = match === null ? Number.NaN : Number(match[2])
  return match === null || !(port >= 1 && port <= 65535)
    ? Effect.fail(new AddressInvalid({ flag, value }))
    : Effect.succeed({ host: match[1]!, port })
}
