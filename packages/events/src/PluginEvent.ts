/**
 * Events about plugins being loaded into the registry.
 */
import { Schema } from "effect"
import { family } from "./Event.ts"

export const PluginLoaded = family(
  "plugin.loaded",
  "plugin",
  Schema.Struct({ name: Schema.String, kind: Schema.Literals(["service", "environment"]), source: Schema.String })
)

export const PluginFailed = family(
  "plugin.failed",
  "plugin",
  Schema.Struct({ source: Schema.String, reason: Schema.String })
)

export const PluginEvent = Schema.Union([PluginLoaded, PluginFailed])
export type PluginEvent = typeof PluginEvent.Type
