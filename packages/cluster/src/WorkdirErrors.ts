/** What stops a runner from using its work directory (`--workdir`): another runner has it, or it cannot be made. */
import { ExitCode } from "@testbed/events"
import { Runtime, Schema } from "effect"

/** Another live runner holds the work directory (`WORKDIR/runner.lock`). */
export class WorkdirInUse extends Schema.TaggedError<WorkdirInUse>()("WorkdirInUse", {
  workdir: Schema.String,
  holder: Schema.String
}) {
  override get message(): string {
    return `work directory ${this.workdir} is in use by ${this.holder}: give each runner its own --workdir`
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.busy
  }
}

/** The work directory could not be made or locked. */
export class WorkdirUnusable extends Schema.TaggedError<WorkdirUnusable>()("WorkdirUnusable", {
  workdir: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `work directory ${this.workdir}: ${this.reason}`
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}
