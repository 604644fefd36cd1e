/**
 * Events about the environment a test's services run in (localhost, docker stage…).
 */
import { Schema } from "effect"
import { family } from "./Event.ts"
import { StateChangeData } from "./StateChange.ts"

export const EnvironmentStateChanged = family("environment.state_changed", "environment", StateChangeData)

export const EnvironmentReady = family(
  "environment.ready",
  "environment",
  Schema.Struct({
    kind: Schema.String,
    test: Schema.optionalKey(Schema.String),
    details: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
  })
)

/**
 * An implementation's image is ready for the docker environment, built before the tests (its time is not any
 * test's): `built` false when an image with the same inputs' hash was already there. entityId is the image's tag.
 */
export const EnvironmentImageReady = family(
  "environment.image_ready",
  "environment",
  Schema.Struct({
    implementation: Schema.String,
    image: Schema.String,
    /** SHA-256 of the image's inputs: its Dockerfile, every file's path and content, the packages' versions. */
    inputsHash: Schema.String,
    built: Schema.Boolean,
    /** Time to hash the inputs and, when `built`, to build the image. */
    durationMs: Schema.Finite,
    /** Debian packages the files came from, `name=version`. */
    packages: Schema.Array(Schema.String)
  })
)

export const EnvironmentEvent = Schema.Union([EnvironmentStateChanged, EnvironmentReady, EnvironmentImageReady])
export type EnvironmentEvent = typeof EnvironmentEvent.Type
