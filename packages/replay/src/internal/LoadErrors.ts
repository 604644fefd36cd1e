// The errors of loading a script (ScriptLoader re-exports them): each names the file, the JSON path and what to do.
import { ExitCode } from "@testbed/events"
import { Runtime, Schema } from "effect"
import type { BlobError } from "../BlobStore.ts"
import type { ScriptInvalid } from "../Script.ts"

export class ScriptNotFound extends Schema.TaggedError<ScriptNotFound>()("ScriptNotFound", {
  file: Schema.String,
  reason: Schema.String
}) {
  /** A script, a name or an action the user must fix. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `cannot read script ${this.file}: ${this.reason}`
  }
}

export class ScriptNameNotFound extends Schema.TaggedError<ScriptNameNotFound>()("ScriptNameNotFound", {
  file: Schema.String,
  path: Schema.String,
  name: Schema.String,
  available: Schema.Array(Schema.String)
}) {
  /** A script, a name or an action the user must fix. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.file}: ${this.path === "" ? "" : `at ${this.path}: `}no script named "${this.name}" (names: ${this.available.join(", ") || "none"})`
  }
}

/** Named scripts (or external files) that lead back to themselves: the chain, spelled out. */
export class ScriptCycle extends Schema.TaggedError<ScriptCycle>()("ScriptCycle", {
  kind: Schema.Literals(["named", "external"]),
  cycle: Schema.Array(Schema.String)
}) {
  /** A script, a name or an action the user must fix. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `cycle of ${this.kind} scripts: ${this.cycle.join(" -> ")}`
  }
}

export class ScriptPathEscapes extends Schema.TaggedError<ScriptPathEscapes>()("ScriptPathEscapes", {
  file: Schema.String,
  path: Schema.String,
  target: Schema.String,
  root: Schema.String
}) {
  /** A script, a name or an action the user must fix. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.file}: at ${this.path}: external file ${this.target} is outside the script root ${this.root} (allow with --allow-outside-root)`
  }
}

export class ActionInvalid extends Schema.TaggedError<ActionInvalid>()("ActionInvalid", {
  file: Schema.String,
  path: Schema.String,
  action: Schema.String,
  reason: Schema.String
}) {
  /** A script, a name or an action the user must fix. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.file}: at ${this.path}: action "${this.action}": ${this.reason}`
  }
}

export type LoadError =
  | ScriptInvalid
  | ScriptNotFound
  | ScriptNameNotFound
  | ScriptCycle
  | ScriptPathEscapes
  | ActionInvalid
  | BlobError
