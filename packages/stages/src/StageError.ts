/**
 * Everything that can go wrong with a stage, named for what happened and carrying what a user needs to act.
 */
import { Runtime, Schema } from "effect"
import { ExitCode } from "@testbed/events"

/** A stage name that could escape the catalog or break labels: only letters, digits, `.`, `_`, `-`; no `..`. */
export class InvalidStageName extends Schema.TaggedError<InvalidStageName>()("InvalidStageName", {
  name: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `invalid stage name ${JSON.stringify(this.name)}: ${this.reason}`
  }
}

export class StageNotFound extends Schema.TaggedError<StageNotFound>()("StageNotFound", {
  name: Schema.String,
  looked: Schema.Array(Schema.String)
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `no stage ${JSON.stringify(this.name)} (looked in ${this.looked.join(", ")})`
  }
}

/** The definition does not match the schema; each problem names its YAML path (`nodes.client1.networks[0]`). */
export class StageInvalid extends Schema.TaggedError<StageInvalid>()("StageInvalid", {
  source: Schema.String,
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.source}: invalid stage definition\n${this.problems.map((p) => `  at ${p.path || "(root)"}: ${p.message}`).join("\n")}`
  }
}

/** A compose file uses keys testbed does not translate; they are listed rather than silently ignored. */
export class ComposeUnsupported extends Schema.TaggedError<ComposeUnsupported>()("ComposeUnsupported", {
  source: Schema.String,
  keys: Schema.Array(Schema.String)
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.source}: unsupported compose keys: ${this.keys.join(", ")}`
  }
}

export class DockerUnavailable extends Schema.TaggedError<DockerUnavailable>()("DockerUnavailable", {
  host: Schema.String,
  reason: Schema.String,
  hint: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `Docker engine at ${this.host} is not answering (${this.reason}). ${this.hint}`
  }
}

export class ImageNotFound extends Schema.TaggedError<ImageNotFound>()("ImageNotFound", {
  image: Schema.String,
  node: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `image ${this.image} (node ${this.node}) is not present locally and the node has no build context to build it from`
  }
}

export class ImageBuildFailed extends Schema.TaggedError<ImageBuildFailed>()("ImageBuildFailed", {
  image: Schema.String,
  context: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `building ${this.image} from ${this.context} failed: ${this.reason}`
  }
}

/** The engine refused a network, usually because its subnet overlaps one that exists already. */
export class NetworkConflict extends Schema.TaggedError<NetworkConflict>()("NetworkConflict", {
  network: Schema.String,
  subnet: Schema.optionalKey(Schema.String),
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `network ${this.network}${this.subnet ? ` (${this.subnet})` : ""} could not be created: ${this.reason}`
  }
}

/** Any other refusal by the engine, with the operation that was attempted. */
export class DockerFailed extends Schema.TaggedError<DockerFailed>()("DockerFailed", {
  operation: Schema.String,
  reason: Schema.String,
  statusCode: Schema.optionalKey(Schema.Int)
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `docker ${this.operation} failed: ${this.reason}`
  }
}

export class NoStageUp extends Schema.TaggedError<NoStageUp>()("NoStageUp", {}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return "no stage is up (bring one up with `testbed stage up NAME`)"
  }
}

export class NodeNotFound extends Schema.TaggedError<NodeNotFound>()("NodeNotFound", {
  stage: Schema.String,
  node: Schema.String,
  nodes: Schema.Array(Schema.String)
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `stage ${this.stage} has no running node ${this.node} (nodes: ${this.nodes.join(", ") || "none"})`
  }
}

export class NodeNotReady extends Schema.TaggedError<NodeNotReady>()("NodeNotReady", {
  node: Schema.String,
  condition: Schema.String,
  timeoutMs: Schema.Finite,
  lastReason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `node ${this.node} was not ready (${this.condition}) within ${this.timeoutMs} ms: ${this.lastReason}`
  }
}

export class HookFailed extends Schema.TaggedError<HookFailed>()("HookFailed", {
  phase: Schema.Literals(["up", "down"]),
  node: Schema.String,
  command: Schema.Array(Schema.String),
  exitCode: Schema.NullOr(Schema.Int),
  output: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `${this.phase} hook on ${this.node} (${this.command.join(" ")}) exited with ${this.exitCode}: ${this.output.trim()}`
  }
}

export class HostSettingFailed extends Schema.TaggedError<HostSettingFailed>()("HostSettingFailed", {
  setting: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `host setting ${this.setting} could not be changed: ${this.reason}`
  }
}

export class StateFileFailed extends Schema.TaggedError<StateFileFailed>()("StateFileFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `stage state file ${this.path}: ${this.reason}`
  }
}

/** Another `up`, `down` or `prune` of the same project holds its lock, and did not let go in time. */
export class StageBusy extends Schema.TaggedError<StageBusy>()("StageBusy", {
  stateDir: Schema.String,
  operation: Schema.String,
  pid: Schema.NullOr(Schema.Int),
  host: Schema.NullOr(Schema.String),
  since: Schema.NullOr(Schema.String),
  waitedMs: Schema.Finite
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.busy
  }
  override get message(): string {
    const who =
      this.pid === null ? "another testbed process" : `testbed (pid ${this.pid}${this.host ? ` on ${this.host}` : ""})`
    return `${who} is running \`stage ${this.operation}\` for ${this.stateDir}${this.since ? ` since ${this.since}` : ""}; waited ${Math.round(this.waitedMs / 1000)} s for it to finish. Try again when it is done, or stop it.`
  }
}

/** The kernel lacks what a setting needs (this one has no `sch_netem`: delay, jitter, reorder, duplicate, corrupt). */
export class ImpairmentUnsupported extends Schema.TaggedError<ImpairmentUnsupported>()("ImpairmentUnsupported", {
  target: Schema.String,
  settings: Schema.Array(Schema.String),
  module: Schema.String,
  reason: Schema.String
}) {
  /** A setting, target or instance the user must change. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.settings.join(", ")} on ${this.target} needs the kernel module ${this.module}, which this kernel does not offer (${this.reason}); rate, loss and down/flap work without it`
  }
}

/** `NODE:IFACE` names nothing of the stage that is up. */
export class TargetNotFound extends Schema.TaggedError<TargetNotFound>()("TargetNotFound", {
  target: Schema.String,
  reason: Schema.String
}) {
  /** A setting, target or instance the user must change. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `no link end or network attachment ${this.target}: ${this.reason}`
  }
}

/** A host tool (ip, tc, nft, nsenter) run inside a node's network namespace refused. */
export class NetworkToolFailed extends Schema.TaggedError<NetworkToolFailed>()("NetworkToolFailed", {
  node: Schema.String,
  command: Schema.Array(Schema.String),
  exitCode: Schema.NullOr(Schema.Int),
  output: Schema.String
}) {
  /** The host or the engine, not the test. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    const code = this.exitCode === null ? "did not finish" : `exited with ${this.exitCode}`
    return `in the namespace of ${this.node}, \`${this.command.join(" ")}\` ${code}: ${this.output.trim() || "(no output)"}`
  }
}

/** Namespaces of nodes can only be entered when the engine runs on this machine, as root. */
export class NamespaceUnavailable extends Schema.TaggedError<NamespaceUnavailable>()("NamespaceUnavailable", {
  node: Schema.String,
  reason: Schema.String
}) {
  /** The host or the engine, not the test. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot enter the network namespace of ${this.node}: ${this.reason}`
  }
}

/** `--verify`: what was measured between the two ends is further from the setting than the tolerance. */
export class ImpairmentOffTarget extends Schema.TaggedError<ImpairmentOffTarget>()("ImpairmentOffTarget", {
  target: Schema.String,
  measure: Schema.String,
  setting: Schema.String,
  achieved: Schema.String,
  tolerance: Schema.String
}) {
  /** The host or the engine, not the test. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `${this.target}: ${this.measure} set to ${this.setting}, measured ${this.achieved} (tolerance ${this.tolerance})`
  }
}

/** An instance that cannot be made: no pool in the stage file, a pool that is full, a fixed bridge name. */
export class InstanceInvalid extends Schema.TaggedError<InstanceInvalid>()("InstanceInvalid", {
  stage: Schema.String,
  instance: Schema.String,
  reason: Schema.String
}) {
  /** A setting, target or instance the user must change. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `stage ${this.stage}, instance ${this.instance}: ${this.reason}`
  }
}

export type StageError =
  | InvalidStageName
  | StageNotFound
  | StageInvalid
  | ComposeUnsupported
  | DockerUnavailable
  | ImageNotFound
  | ImageBuildFailed
  | NetworkConflict
  | DockerFailed
  | NoStageUp
  | NodeNotFound
  | NodeNotReady
  | HookFailed
  | HostSettingFailed
  | StateFileFailed
  | StageBusy
  | ImpairmentUnsupported
  | TargetNotFound
  | NetworkToolFailed
  | NamespaceUnavailable
  | ImpairmentOffTarget
  | InstanceInvalid
