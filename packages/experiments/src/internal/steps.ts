// The steps of a test, run in order: wait, or run a command (in the test's directory or a service's; in the
// docker environment a step with `service` runs in that service's node).
// Each publishes step.started / step.finished; the first that fails ends the attempt.
import { EventBus, type WriteFailed } from "@testbed/events"
import { type Command, CommandRunner, LocalRunner } from "@testbed/commands"
import { ServiceCommand } from "@testbed/plugins"
import { Clock, Duration, Effect, FileSystem, type Path } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import type { FleetStep, ReplayStep, RunStep, Step } from "../ExperimentConfig.ts"
import * as Render from "./render.ts"
import { Abort, type Attempt, recordStep, writeFailed } from "./attempt.ts"
import { stepLog } from "./stepLog.ts"
import * as StepResources from "./stepResources.ts"

const defaultStepTimeout = Duration.minutes(1)

const finished = (
  attempt: Attempt,
  index: number,
  kind: string,
  startedAt: number,
  status: "passed" | "failed" | "timeout" | "interrupted",
  message?: string
) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    EventBus.emit({
      type: "step.finished",
      entityId: `${attempt.test.name}/step/${index}`,
      data: {
        test: attempt.test.name,
        index,
        kind,
        status,
        durationMs: now - startedAt,
        ...(message === undefined ? {} : { message })
      }
    })
  )

export interface StepOutcome {
  readonly status: "passed" | "failed" | "timeout"
  readonly message: string | undefined
}

const runCommand = Effect.fnUntraced(function* (attempt: Attempt, index: number, step: RunStep) {
  const fs = yield* FileSystem.FileSystem
  const name = step.name ?? `step${index}`
  const service = step.service === undefined ? undefined : attempt.services.get(step.service)
  const variables = service?.variables ?? { ...attempt.variables }
  const template =
    step.shell !== undefined
      ? { program: "sh", args: ["-c", step.shell], ...(step.env === undefined ? {} : { env: step.env }) }
      : {
          program: step.command![0]!,
          args: step.command!.slice(1),
          ...(step.env === undefined ? {} : { env: step.env })
        }
  const rendered = yield* Render.orFailed(
    ServiceCommand.renderCommand(template, variables, {
      id: `${attempt.test.name}/step/${index}`,
      cwd: service?.dir ?? attempt.dir
    })
  )
  if (rendered instanceof ServiceCommand.TemplateFailed) return { status: "failed" as const, message: rendered.reason }
  const stdoutPath = yield* stepLog(attempt, name, ".stdout.log")
  const stderrPath = yield* stepLog(attempt, name, ".stderr.log")
  const timeout = step.timeout ?? defaultStepTimeout
  // Through a CommandRunner (the environment's, else the local one), so the step's command also appears as
  // command.started / command.completed|failed|timed_out in the event log.
  const planned: Command.Command = { ...rendered, timeout, killGracePeriod: Duration.seconds(2) }
  // With `service`, in that service's node when the environment has one per service (docker); else here.
  const runner =
    (step.service === undefined ? undefined : attempt.environment.runnerOf?.(step.service)) ??
    attempt.environment.runner
  // Sampled like a service when it runs here and the test samples.
  const interval = attempt.test.metricsInterval
  const pidFile = runner === undefined && interval !== undefined ? yield* stepLog(attempt, name, ".pid") : undefined
  const command = pidFile === undefined ? planned : StepResources.recordingPid(planned, pidFile)
  const run = Effect.gen(function* () {
    const runner = yield* CommandRunner.CommandRunner
    return yield* runner.run(command)
  })
  const running =
    runner === undefined
      ? Effect.provide(run, LocalRunner.layer)
      : Effect.provideService(run, CommandRunner.CommandRunner, runner)
  const ran = yield* Effect.result(
    pidFile === undefined || interval === undefined
      ? running
      : StepResources.sampled(attempt, name, interval, pidFile, running)
  )
  const failure = ran._tag === "Failure" ? ran.failure : undefined
  if (failure !== undefined && failure._tag !== "CommandFailed" && failure._tag !== "CommandTimedOut") {
    return { status: "failed" as const, message: `step ${name}: ${CommandRunner.describeError(failure)}` }
  }
  // A failed exit code is judged below against expect_exit (which may be another code, or `any`).
  const result = ran._tag === "Success" ? ran.success : failure!.result
  yield* fs.writeFileString(stdoutPath, result.stdout).pipe(Effect.mapError(writeFailed(stdoutPath)))
  yield* fs.writeFileString(stderrPath, result.stderr).pipe(Effect.mapError(writeFailed(stderrPath)))
  const { exitCode, signal } = result
  recordStep(attempt, { name, exitCode, signal, stdoutPath, stderrPath })
  if (result.timedOut) {
    return { status: "timeout" as const, message: `step ${name} still running after ${Duration.format(timeout)}` }
  }
  const expected = step.expect_exit ?? 0
  if (expected === "any" || (signal === null && exitCode === expected))
    return { status: "passed" as const, message: undefined }
  return {
    status: "failed" as const,
    message: `step ${name}: ${signal !== null ? `killed by ${signal}` : `exit code ${exitCode}`} (expected ${expected})`
  }
})

// @testbed/fleet (an MQTT client and broker) and @testbed/replay load only when a test has a fleet or a replay
// step: `run --dry-run` and runs without one do not pay for loading them. A module that cannot load fails the step,
// saying why.
const loadedStep = <M, E, R>(
  name: string,
  kind: string,
  load: () => Promise<M>,
  run: (module: M) => Effect.Effect<StepOutcome, E, R>
) =>
  Effect.tryPromise({
    try: load,
    catch: (error) => `step ${name}: cannot load the ${kind} step: ${String(error)}`
  }).pipe(
    Effect.matchEffect({
      onFailure: (message) => Effect.succeed<StepOutcome>({ status: "failed", message }),
      onSuccess: run
    })
  )

const runFleet = (attempt: Attempt, index: number, step: FleetStep) =>
  loadedStep(
    step.name ?? `step${index}`,
    "fleet",
    () => import("./fleetStep.ts"),
    (module) => module.runFleet(attempt, index, step)
  )

const runReplay = (attempt: Attempt, index: number, step: ReplayStep) =>
  loadedStep(
    step.name ?? `step${index}`,
    "replay",
    () => import("./replayStep.ts"),
    (module) => module.runReplay(attempt, index, step)
  )

export const runAll = Effect.fn("Steps.runAll")(function* (attempt: Attempt, steps: ReadonlyArray<Step>) {
  for (const [index, step] of steps.entries()) {
    const kind = "wait" in step ? "wait" : "run" in step ? "run" : "fleet" in step ? "fleet" : "replay"
    const description =
      "wait" in step
        ? step.description
        : "run" in step
          ? (step.run.description ?? step.run.name)
          : "fleet" in step
            ? (step.fleet.description ?? step.fleet.name)
            : (step.replay.description ?? step.replay.name)
    yield* EventBus.emit({
      type: "step.started",
      entityId: `${attempt.test.name}/step/${index}`,
      data: { test: attempt.test.name, index, kind, ...(description === undefined ? {} : { description }) }
    })
    const startedAt = yield* Clock.currentTimeMillis
    const execute: Effect.Effect<
      StepOutcome,
      WriteFailed.WriteFailed,
      FileSystem.FileSystem | Path.Path | EventBus.EventBus | ChildProcessSpawner.ChildProcessSpawner
    > =
      "wait" in step
        ? Effect.as(Effect.sleep(step.wait), { status: "passed", message: undefined })
        : "run" in step
          ? runCommand(attempt, index, step.run).pipe(
              Effect.catchTag("PathOutsideRun", (error) =>
                Effect.succeed<StepOutcome>({ status: "failed", message: error.message })
              )
            )
          : "fleet" in step
            ? runFleet(attempt, index, step.fleet)
            : runReplay(attempt, index, step.replay)
    const result = yield* execute.pipe(
      Effect.onInterrupt(() => finished(attempt, index, kind, startedAt, "interrupted"))
    )
    yield* finished(attempt, index, kind, startedAt, result.status, result.message)
    if (result.status !== "passed") {
      return yield* new Abort({ status: result.status, reason: result.message ?? `step ${index} ${result.status}` })
    }
  }
})
