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

/** Which lifecycle command of a service (PANTHER's prepare, pre-run, post-run). */
export const HookName = Schema.Literals(["prepare", "pre_run", "post_run"])

/** A lifecycle command of a service started, where the service runs. entityId is `<test>/<service>`. */
export const ServiceHookStarted = family(
  "service.hook_started",
  "service",
  Schema.Struct({ test: Schema.String, service: Schema.String, hook: HookName })
)

/** A lifecycle command of a service ended: `failed` (its exit code or why it could not run) or `timeout`. */
export const ServiceHookFinished = family(
  "service.hook_finished",
  "service",
  Schema.Struct({
    test: Schema.String,
    service: Schema.String,
    hook: HookName,
    status: Schema.Literals(["passed", "failed", "timeout"]),
    durationMs: Schema.Finite,
    exitCode: Schema.NullOr(Schema.Int),
    message: Schema.optionalKey(Schema.String)
  })
)

export const ServiceEvent = Schema.Union([
  ServiceStateChanged,
  ServiceStarted,
  ServiceExited,
  ServiceHookStarted,
  ServiceHookFinished
])
export type ServiceEvent = typeof ServiceEvent.Type
