/**
 * Why a replay failed, named for what happened, each carrying where (connection, step path) and the bytes.
 */
import { Runtime, Schema } from "effect"
import { render } from "./internal/Bytes.ts"
import { ExitCode } from "@testbed/events"

/** The client sent a byte other than the recorded one. */
export class ScriptMismatch extends Schema.TaggedError<ScriptMismatch>()("ScriptMismatch", {
  connection: Schema.Int,
  step: Schema.String,
  /** Offset of the first differing byte within the step's expected bytes. */
  offset: Schema.Int,
  expected: Schema.Uint8Array,
  received: Schema.Uint8Array
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return [
      `connection ${this.connection}, step ${this.step}: the client's bytes differ from the script at offset ${this.offset}`,
      `  expected: ${render(this.expected, this.offset)}`,
      `  received: ${render(this.received, this.offset)}`
    ].join("\n")
  }
}

/** The client closed (or the run ended) before the script did. */
export class ScriptNotExhausted extends Schema.TaggedError<ScriptNotExhausted>()("ScriptNotExhausted", {
  connection: Schema.Int,
  step: Schema.String,
  /** Bytes of the step's expected input already matched. */
  offset: Schema.Int,
  remainingSteps: Schema.Int,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return `connection ${this.connection}, step ${this.step}: ${this.reason} with ${this.remainingSteps} step(s) of the script left (matched ${this.offset} byte(s) of this step)`
  }
}

/**
 * The client's input for a step did not arrive within the step's deadline (counted from the step's start, or
 * from an action's last write): bytes trickling in do not extend it.
 */
export class StepTimedOut extends Schema.TaggedError<StepTimedOut>()("StepTimedOut", {
  connection: Schema.Int,
  step: Schema.String,
  timeoutMs: Schema.Finite,
  offset: Schema.Int,
  expected: Schema.Uint8Array
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return `connection ${this.connection}, step ${this.step}: the client's input did not arrive within the step's ${this.timeoutMs} ms (${this.offset} byte(s) matched); waiting for ${render(this.expected, this.offset)}`
  }
}

/** An action read a line and the client sent more than the bound without a newline. */
export class LineTooLong extends Schema.TaggedError<LineTooLong>()("LineTooLong", {
  connection: Schema.Int,
  step: Schema.String,
  limit: Schema.Int,
  /** The first bytes of the line, for the message. */
  head: Schema.Uint8Array
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return `connection ${this.connection}, step ${this.step}: the client sent more than ${this.limit} bytes without a newline where a line was expected; it starts ${render(this.head, 0)}`
  }
}

/** A connection beyond the ones a compound_multi script expects. */
export class UnexpectedConnection extends Schema.TaggedError<UnexpectedConnection>()("UnexpectedConnection", {
  connection: Schema.Int,
  expected: Schema.Int
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return `connection ${this.connection} was not expected: the script has ${this.expected} connection(s)`
  }
}

/** An action of a module failed while running (bad client input for it, impossible state…). */
export class ActionFailed extends Schema.TaggedError<ActionFailed>()("ActionFailed", {
  connection: Schema.Int,
  step: Schema.String,
  action: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return `connection ${this.connection}, step ${this.step}: action ${this.action} failed: ${this.reason}`
  }
}

/** A response kept in a blob file could not be read while it was sent (the file changed or went bad). */
export class ResponseUnreadable extends Schema.TaggedError<ResponseUnreadable>()("ResponseUnreadable", {
  connection: Schema.Int,
  step: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `connection ${this.connection}, step ${this.step}: cannot send the response: ${this.reason}`
  }
}

export type ReplayFailure =
  | ScriptMismatch
  | ScriptNotExhausted
  | StepTimedOut
  | LineTooLong
  | UnexpectedConnection
  | ActionFailed
  | ResponseUnreadable
