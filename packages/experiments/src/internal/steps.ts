// The steps of a test, run in order: wait, or run a command (in the test's directory or a service's).
// Each publishes step.started / step.finished; the first that fails ends the attempt.
import { EventBus } from "@testbed/events"
import { ServiceCommand } from "@testbed/plugins"
import { Clock, Duration, Effect, FileSystem, Option, Path } from "effect"
import type { RunStep, Step } from "../ExperimentConfig.ts"
import { parseDuration } from "../Plan.ts"
import { Abort, type Attempt } from "./attempt.ts"

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
      entityType: "step",
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

interface StepOutcome {
  readonly status: "passed" | "failed" | "timeout"
  readonly message: string | undefined
}

const runCommand = Effect.fnUntraced(function* (attempt: Attempt, index: number, step: RunStep) {
  const path = yield* Path.Path
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
  const rendered = ServiceCommand.renderCommand(template, variables, {
    id: `${attempt.test.name}/step/${index}`,
    cwd: service?.dir ?? attempt.dir
  })
  if (rendered instanceof ServiceCommand.TemplateFailed) return { status: "failed" as const, message: rendered.reason }
  const dir = path.join(attempt.dir, "steps")
  yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.orDie)
  const stdoutPath = path.join(dir, `${name}.stdout.log`)
  const stderrPath = path.join(dir, `${name}.stderr.log`)
  const timeout = (step.timeout === undefined ? undefined : parseDuration(step.timeout)) ?? defaultStepTimeout
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const process = yield* attempt.environment.launch({
        id: `${attempt.test.name}/${name}`,
        command: rendered,
        stdoutPath,
        stderrPath
      })
      const exit = yield* Effect.timeoutOption(process.exited, timeout)
      if (Option.isNone(exit)) {
        const stopped = yield* process.stop("2 seconds")
        attempt.steps.set(name, { name, exitCode: stopped.exitCode, signal: stopped.signal, stdoutPath, stderrPath })
        return { status: "timeout" as const, message: `step ${name} still running after ${Duration.format(timeout)}` }
      }
      const { exitCode, signal } = exit.value
      attempt.steps.set(name, { name, exitCode, signal, stdoutPath, stderrPath })
      const expected = step.expect_exit ?? 0
      if (expected === "any" || exitCode === expected) return { status: "passed" as const, message: undefined }
      return {
        status: "failed" as const,
        message: `step ${name}: ${signal !== null ? `killed by ${signal}` : `exit code ${exitCode}`} (expected ${expected})`
      }
    })
  ).pipe(
    Effect.catchTag("ServiceLaunchFailed", (error) =>
      Effect.succeed({ status: "failed" as const, message: error.message })
    )
  )
})

export const runAll = Effect.fn("Steps.runAll")(function* (attempt: Attempt, steps: ReadonlyArray<Step>) {
  for (const [index, step] of steps.entries()) {
    const kind = "wait" in step ? "wait" : "run"
    const description = "wait" in step ? step.description : (step.run.description ?? step.run.name)
    yield* EventBus.emit({
      type: "step.started",
      entityType: "step",
      entityId: `${attempt.test.name}/step/${index}`,
      data: { test: attempt.test.name, index, kind, ...(description === undefined ? {} : { description }) }
    })
    const startedAt = yield* Clock.currentTimeMillis
    const execute: Effect.Effect<StepOutcome, never, FileSystem.FileSystem | Path.Path> =
      "wait" in step
        ? Effect.as(Effect.sleep(parseDuration(step.wait) ?? Duration.zero), { status: "passed", message: undefined })
        : runCommand(attempt, index, step.run)
    const result = yield* execute.pipe(
      Effect.onInterrupt(() => finished(attempt, index, kind, startedAt, "interrupted"))
    )
    yield* finished(attempt, index, kind, startedAt, result.status, result.message)
    if (result.status !== "passed") {
      return yield* new Abort({ status: result.status, reason: result.message ?? `step ${index} ${result.status}` })
    }
  }
})
