/**
 * Events about a service (an implementation under test or a tester) inside a test.
 * A service's entityId is `<test>/<service>`.
 */
import { Schema } from "effect"
import { family } from "./Event.ts"
import { StateChangeData } from "./StateChange.ts"

export const ServiceStateChanged = family("service.state_changed", "service", StateChangeData)

export const ServiceStarted = family(
  "service.started",
  "service",
  Schema.Struct({
    test: Schema.String,
    service: Schema.String,
    implementation: Schema.String,
    type: Schema.Literals(["iut", "tester"]),
    role: Schema.optionalKey(Schema.Literals(["server", "client"])),
    pid: Schema.optionalKey(Schema.Int)
  })
)

export const ServiceExited = family(
  "service.exited",
  "service",
  Schema.Struct({
    test: Schema.String,
    service: Schema.String,
    exitCode: Schema.NullOr(Schema.Int),
    signal: Schema.NullOr(Schema.String),
    crashed: Schema.Boolean,
    /** The limit of its execution environment that ended it: `its memory limit (64.0 MB)`. */
    killedBy: Schema.optionalKey(Schema.String),
    /** The service declared this test unsupported (for example exit code 127). */
    unsupported: Schema.optionalKey(Schema.Boolean)
  })
)

export const ServiceEvent = Schema.Union([ServiceStateChanged, ServiceStarted, ServiceExited])
export type ServiceEvent = typeof ServiceEvent.Type
