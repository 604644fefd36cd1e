// A service's lifecycle commands (prepare, pre_run, post_run), each run where the service runs — its node in the
// docker environment, this machine on localhost — in the service's directory with its variables, within its own
// timeout, as `service.hook_started` / `service.hook_finished` events and `<hook>.stdout.log` / `.stderr.log` in
// the service's directory. The first that fails ends the attempt, naming the service and the hook.
import { type Command, CommandRunner, LocalRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { ServiceCommand } from "@testbed/plugins"
import { Clock, Duration, Effect, FileSystem } from "effect"
import type { Hook } from "../ExperimentConfig.ts"
import { Abort, type Attempt, type ServiceRuntime, writeFailed } from "./attempt.ts"
import * as Hooks from "./hooks.ts"
import * as Render from "./render.ts"
import { inside } from "./runPath.ts"

/** A hook without a timeout of its own gets this one. */
export const defaultHookTimeout = Duration.minutes(1)

interface HookOutcome {
  readonly status: "passed" | "failed" | "timeout"
  readonly exitCode: number | null
  readonly message: string | undefined
}

/** Runs the hook's command through the runner of the service's place, its output into the service's directory. */
const execute = Effect.fnUntraced(function* (
  attempt: Attempt,
  runtime: ServiceRuntime,
  name: Hooks.HookName,
  hook: Hook
) {
  const fs = yield* FileSystem.FileSystem
  const rendered = yield* Render.orFailed(
    ServiceCommand.renderCommand(Hooks.commandOf(hook), runtime.variables, {
      id: `${runtime.id}/${name}`,
      cwd: runtime.dir
    })
  )
  if (rendered instanceof ServiceCommand.TemplateFailed) {
    return { status: "failed", exitCode: null, message: rendered.reason } satisfies HookOutcome
  }
  const timeout = hook.timeout ?? defaultHookTimeout
  const command: Command.Command = { ...rendered, timeout, killGracePeriod: Duration.seconds(2) }
  const run = Effect.gen(function* () {
    const runner = yield* CommandRunner.CommandRunner
    return yield* runner.run(command)
  })
  const runner = attempt.environment.runnerOf?.(runtime.plan.key) ?? attempt.environment.runner
  const ran = yield* Effect.result(
    runner === undefined
      ? Effect.provide(run, LocalRunner.layer)
      : Effect.provideService(run, CommandRunner.CommandRunner, runner)
  )
  const failure = ran._tag === "Failure" ? ran.failure : undefined
  if (failure !== undefined && failure._tag !== "CommandFailed" && failure._tag !== "CommandTimedOut") {
    return { status: "failed", exitCode: null, message: CommandRunner.describeError(failure) } satisfies HookOutcome
  }
  const result = ran._tag === "Success" ? ran.success : failure!.result
  for (const [stream, text] of [
    ["stdout", result.stdout],
    ["stderr", result.stderr]
  ] as const) {
    // The name is one of the four hook names, never the user's: PathOutsideRun here would be a bug.
    const file = yield* inside(runtime.dir, `${name}.${stream}.log`)
    yield* fs.writeFileString(file, text).pipe(Effect.mapError(writeFailed(file)))
  }
  if (result.timedOut) {
    return {
      status: "timeout",
      exitCode: result.exitCode,
      message: `still running after its timeout of ${Duration.format(timeout)}`
    } satisfies HookOutcome
  }
  if (result.signal === null && result.exitCode === 0) {
    return { status: "passed", exitCode: 0, message: undefined } satisfies HookOutcome
  }
  const how = result.signal !== null ? `killed by ${result.signal}` : `exit code ${result.exitCode}`
  const last = result.stderr.trim().split("\n").at(-1)?.slice(0, 200)
  return {
    status: "failed",
    exitCode: result.exitCode,
    message: last === undefined || last === "" ? how : `${how}: ${last}`
  } satisfies HookOutcome
})

/** Runs one hook of one service, published as events; fails the attempt (`failed` or `timeout`) when it fails. */
export const runHook = Effect.fn("Lifecycle.runHook")(function* (
  attempt: Attempt,
  runtime: ServiceRuntime,
  name: Hooks.HookName,
  hook: Hook
) {
  const base = { test: attempt.test.name, service: runtime.plan.key, hook: name }
  yield* EventBus.emit({ type: "service.hook_started", entityId: runtime.id, data: base })
  const startedAt = yield* Clock.currentTimeMillis
  const outcome = yield* execute(attempt, runtime, name, hook)
  const durationMs = (yield* Clock.currentTimeMillis) - startedAt
  yield* EventBus.emit({
    type: "service.hook_finished",
    entityId: runtime.id,
    data: {
      ...base,
      status: outcome.status,
      durationMs,
      exitCode: outcome.exitCode,
      ...(outcome.message === undefined ? {} : { message: outcome.message })
    }
  })
  if (outcome.status !== "passed") {
    return yield* new Abort({
      status: outcome.status,
      reason: `${runtime.id}: ${name} hook ${outcome.status === "timeout" ? "timed out" : "failed"}: ${outcome.message}`
    })
  }
})

/** Runs one hook of every service that has it, in service order (servers first). */
export const runAll = Effect.fn("Lifecycle.runAll")(function* (attempt: Attempt, name: Hooks.HookName) {
  for (const runtime of attempt.services.values()) {
    const hook = runtime.plan.hooks?.[name]
    if (hook !== undefined) yield* runHook(attempt, runtime, name, hook)
  }
})

/** Every service's `prepare`, then every service's `pre_run`: what runs before the first service starts. */
export const beforeStart = Effect.fn("Lifecycle.beforeStart")(function* (attempt: Attempt) {
  yield* runAll(attempt, "prepare")
  yield* runAll(attempt, "pre_run")
})
