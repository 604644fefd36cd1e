// Resource sampling of a command step that runs on this machine. The step's command starts through a shell that
// writes its pid to `steps/<name>.pid` and execs the command (which keeps that pid; nothing is interpolated), so
// its process tree is read from /proc like a service's, at the test's metrics interval, until the step ends. The
// samples are `service.resources` of `step:<name>` (entity `<test>/step:<name>`): the summary and the report show a
// step's peaks and series beside the services'. Steps that run in a container are not sampled.
import { Command } from "@testbed/commands"
import type { EventBus } from "@testbed/events"
import { type Duration, Effect, FileSystem, Schedule } from "effect"
import type { Attempt } from "./attempt.ts"
import * as Resources from "./resources.ts"

/** The name a step's samples carry in place of a service's. */
export const stepService = (name: string): string => `step:${name}`

/** The command behind a shell that records its pid in `pidFile` first. */
export const recordingPid = (command: Command.Command, pidFile: string): Command.Command => {
  const { program, args } = Command.argv(command)
  const { shell: _shell, ...rest } = command
  return { ...rest, program: "sh", args: ["-c", 'echo $$ > "$0" && exec "$@"', pidFile, program, ...args] }
}

// How often the pid file is looked for while the step starts (its process may end sooner: then nothing is read).
const pidPoll = Schedule.spaced("20 millis")

/** Reads the pid once the wrapper has written it whole. */
const pidOf = Effect.fn("StepResources.pidOf")(function* (pidFile: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs.readFileString(pidFile)
  const pid = Number.parseInt(text.trim(), 10)
  return Number.isInteger(pid) && pid > 0 && text.endsWith("\n") ? pid : yield* Effect.fail("not yet")
}, Effect.retry(pidPoll))

/** Runs the step while sampling it; the sampling ends with the step and never changes its outcome. */
export const sampled = Effect.fn("StepResources.sampled")(function* <A, E, R>(
  attempt: Attempt,
  name: string,
  interval: Duration.Duration,
  pidFile: string,
  run: Effect.Effect<A, E, R>
): Effect.fn.Return<A, E, R | FileSystem.FileSystem | EventBus.EventBus> {
  const fs = yield* FileSystem.FileSystem
  const service = stepService(name)
  const sampling = Effect.gen(function* () {
    const pid = yield* pidOf(pidFile)
    const usage = yield* Resources.processSampler(
      pid,
      { test: attempt.test.name, service, attempt: attempt.number },
      `${attempt.test.name}/${service}`
    )
    return yield* Effect.repeat(usage.sampleNow, Schedule.spaced(interval))
  })
  return yield* Effect.raceFirst(run, Effect.andThen(Effect.ignore(sampling), Effect.never)).pipe(
    Effect.ensuring(Effect.ignore(fs.remove(pidFile)))
  )
})
