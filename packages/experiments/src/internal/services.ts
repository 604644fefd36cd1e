// The life of one service inside a test attempt, walked on the service state machine: prepared (its directory),
// deployed (port and command), started (process and readiness), watched until it ends, stopped at teardown.
import { EventBus, Machines, StateMachine } from "@testbed/events"
import { ServiceCommand, type ServicePlugin } from "@testbed/plugins"
import { Deferred, Duration, Effect, FileSystem, Option, Scope } from "effect"
import type { ServicePlan } from "../Plan.ts"
import * as Render from "./render.ts"
import {
  Abort,
  type Attempt,
  addService,
  addVariables,
  assignPort,
  describeExit,
  hostOf,
  makeServiceRuntime,
  recordExecution,
  recordExit,
  recordProcess,
  type ServiceRuntime,
  setCommand,
  setServiceVariables,
  writeFailed
} from "./attempt.ts"
import * as Capture from "./capture.ts"
import * as Execution from "./execution.ts"
import * as Readiness from "./readiness.ts"
import * as Resources from "./resources.ts"
import { inside } from "./runPath.ts"

const stopGrace = Duration.seconds(2)

export const prepare = Effect.fn("Service.prepare")(function* (attempt: Attempt, plan: ServicePlan) {
  const fs = yield* FileSystem.FileSystem
  const id = `${attempt.test.name}/${plan.key}`
  const machine = yield* StateMachine.make(Machines.Service, id)
  const refused = (error: { readonly message: string }) =>
    new Abort({ status: "failed", reason: `${id}: ${error.message}` })
  const dir = yield* inside(attempt.dir, plan.key).pipe(Effect.mapError(refused))
  const runtime = makeServiceRuntime({
    plan,
    id,
    dir,
    stdoutPath: yield* inside(dir, "stdout.log").pipe(Effect.mapError(refused)),
    stderrPath: yield* inside(dir, "stderr.log").pipe(Effect.mapError(refused)),
    machine,
    done: yield* Deferred.make<void>(),
    started: yield* Deferred.make<boolean>()
  })
  addService(attempt, runtime)
  yield* machine.transition("PREPARING", "prepare", { implementation: plan.plugin.name, role: plan.role })
  yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(writeFailed(dir)))
  yield* machine.transition("PREPARED", "directory ready", { dir })
  return runtime
})

/** Gives every server its port, then renders every command (clients need their target's port). */
export const deployAll = Effect.fn("Service.deployAll")(function* (attempt: Attempt) {
  const runtimes = [...attempt.services.values()]
  for (const runtime of runtimes) {
    yield* runtime.machine.transition("DEPLOYING", "deploy")
    if (runtime.plan.role === "server") {
      assignPort(
        runtime,
        runtime.plan.fixedPort ??
          (yield* attempt.environment.allocatePort.pipe(
            Effect.mapError((error) => new Abort({ status: "failed", reason: error.message }))
          ))
      )
    }
    const prefix = runtime.plan.key
    addVariables(attempt, {
      [`${prefix}.host`]: hostOf(attempt, prefix),
      [`${prefix}.dir`]: runtime.dir,
      ...(runtime.port === undefined ? {} : { [`${prefix}.port`]: runtime.port })
    })
  }
  for (const runtime of runtimes) {
    const plan = runtime.plan
    const target = plan.target === undefined ? undefined : attempt.services.get(plan.target)
    const base: Record<string, ServicePlugin.ParameterValue> = {
      ...attempt.variables,
      host: hostOf(attempt, plan.key),
      service: plan.key,
      service_dir: runtime.dir,
      implementation: plan.plugin.name,
      version: plan.version,
      role: plan.role,
      ...(runtime.port === undefined ? {} : { port: runtime.port }),
      ...(target === undefined ? {} : { target_host: hostOf(attempt, target.plan.key) }),
      ...(target?.port === undefined ? {} : { target_port: target.port })
    }
    // Parameter values may themselves be templates (`program: "{{ node }}"`): rendered against the rest first.
    const parameters: Record<string, ServicePlugin.ParameterValue> = {}
    for (const [name, value] of Object.entries(plan.parameters)) {
      const rendered =
        typeof value === "string" ? yield* Render.orFailed(ServiceCommand.renderText(value, base)) : value
      if (rendered instanceof ServiceCommand.TemplateFailed) {
        yield* runtime.machine.transition("ERROR", "parameter template failed", {
          parameter: name,
          reason: rendered.reason
        })
        return yield* new Abort({ status: "failed", reason: `${runtime.id}: parameter ${name}: ${rendered.reason}` })
      }
      parameters[name] = rendered
    }
    setServiceVariables(runtime, { ...base, ...parameters })
    const rendered = yield* Render.orFailed(
      ServiceCommand.renderCommand(plan.spec.command, runtime.variables, {
        id: runtime.id,
        cwd: runtime.dir
      })
    )
    if (rendered instanceof ServiceCommand.TemplateFailed) {
      yield* runtime.machine.transition("ERROR", "command template failed", { reason: rendered.reason })
      return yield* new Abort({ status: "failed", reason: `${runtime.id}: ${rendered.reason}` })
    }
    setCommand(runtime, { ...rendered, killGracePeriod: stopGrace })
    yield* runtime.machine.transition("DEPLOYED", "command rendered", {
      program: rendered.program ?? "",
      args: rendered.args ?? [],
      ...(runtime.port === undefined ? {} : { port: runtime.port })
    })
  }
})

/** Waits for the process to end, then walks the machine to DESTROYED and publishes `service.exited`. */
const watch = Effect.fnUntraced(function* (attempt: Attempt, runtime: ServiceRuntime) {
  const process = runtime.process!
  const ended = yield* process.exited
  const ready = yield* Deferred.await(runtime.started)
  const exit = yield* Execution.withLimit(runtime.execution, ended)
  recordExit(runtime, exit)
  const plan = runtime.plan
  const unsupported = exit.exitCode !== null && (plan.plugin.unsupportedExitCodes ?? []).includes(exit.exitCode)
  // Exit code 0 is a finished service, not a crash, whatever its lifetime: a one-shot server (socat without `fork`)
  // ends as soon as its only client is served, which races the client's own exit. Clients that needed it fail on
  // their own, with their reason.
  const finished = exit.exitCode === 0 && exit.signal === null
  const clean = exit.stopped || unsupported || finished
  const crashed = !exit.stopped && !unsupported && !finished && (plan.lifetime === "service" || exit.signal !== null)
  const trigger = exit.stopped ? "stopped by testbed" : unsupported ? "declared unsupported" : describeExit(exit)
  const metadata = { exitCode: exit.exitCode, signal: exit.signal }
  if (clean) {
    yield* runtime.machine.transition("STOPPING", trigger, metadata)
    yield* runtime.machine.transition("STOPPED", trigger, metadata)
  } else {
    yield* runtime.machine.transition("ERROR", trigger, metadata)
  }
  yield* runtime.machine.transition("DESTROYED", "process gone")
  yield* EventBus.emit({
    type: "service.exited",
    entityId: runtime.id,
    data: {
      test: attempt.test.name,
      service: plan.key,
      exitCode: exit.exitCode,
      signal: exit.signal,
      crashed,
      ...(exit.limit === undefined ? {} : { killedBy: exit.limit }),
      ...(unsupported ? { unsupported: true } : {})
    }
  })
  // An exit before the service was ready is the readiness check's to report ("ended before it was ready", which says
  // more): reported here as well, the attempt's reason would depend on which of the two fibers got there first.
  if (ready && unsupported && !exit.stopped) {
    yield* Deferred.succeed(
      attempt.crashed,
      new Abort({
        status: "unsupported",
        reason: `${plan.key} (${plan.plugin.name}) does not support this test (exit code ${exit.exitCode})`
      })
    )
  } else if (ready && plan.lifetime === "service" && crashed) {
    yield* Deferred.succeed(
      attempt.crashed,
      new Abort({
        status: "failed",
        reason: `${plan.key} (${plan.plugin.name}) ended on its own: ${describeExit(exit)}`
      })
    )
  }
  yield* Deferred.succeed(runtime.done, undefined)
  // Only the service machine's moves can fail here, and each is in its table: a failure is a bug, not a run's fault.
}, Effect.orDie)

/** Starts the process, publishes `service.started`, waits until it is ready. */
export const start = Effect.fn("Service.start")(function* (
  attempt: Attempt,
  runtime: ServiceRuntime,
  launchScope: Scope.Scope
) {
  const plan = runtime.plan
  yield* runtime.machine.transition("STARTING", "start")
  const { command, applied } = yield* Execution.apply(attempt, runtime, launchScope)
  recordExecution(runtime, applied)
  const process = yield* attempt.environment
    .launch({
      id: runtime.id,
      node: plan.key,
      command,
      stdoutPath: runtime.stdoutPath,
      stderrPath: runtime.stderrPath
    })
    .pipe(
      Effect.provideService(Scope.Scope, launchScope),
      // STARTING → ERROR is in the service machine's table: an InvalidTransition here is a bug in the table, and
      // stays that error (the attempt reports it as an internal error), not the launch's failure.
      Effect.catch((error) =>
        Effect.andThen(
          runtime.machine.transition("ERROR", "launch failed", { reason: error.reason }),
          Effect.fail(new Abort({ status: "failed", reason: error.message }))
        )
      )
    )
  recordProcess(runtime, process)
  if (attempt.test.metricsInterval !== undefined) {
    yield* Resources.watch(attempt, runtime, attempt.test.metricsInterval, launchScope)
  }
  // The service's log could not be written (a full disk): the run cannot go on.
  if (process.outputFailed !== undefined) {
    yield* Effect.forkIn(
      Effect.flatMap(process.outputFailed, (error) => Deferred.succeed(attempt.fatal, error)),
      launchScope
    )
  }
  yield* EventBus.emit({
    type: "service.started",
    entityId: runtime.id,
    data: {
      test: attempt.test.name,
      service: plan.key,
      implementation: plan.plugin.name,
      type: plan.type,
      role: plan.role,
      ...(process.pid === undefined ? {} : { pid: process.pid })
    }
  })
  yield* runtime.machine.transition("RUNNING", "process started", process.pid === undefined ? {} : { pid: process.pid })
  yield* Effect.forkIn(watch(attempt, runtime), launchScope)
  yield* Readiness.wait(attempt, runtime).pipe(
    Effect.tap(() => runtime.machine.transition("READY", "ready", { readiness: plan.readiness.kind })),
    Effect.tap(() => Deferred.succeed(runtime.started, true)),
    Effect.ensuring(Deferred.succeed(runtime.started, false))
  )
})

/** Waits for a task service to end, within its own timeout if it has one. */
export const awaitTask = Effect.fn("Service.awaitTask")(function* (runtime: ServiceRuntime) {
  const done = Deferred.await(runtime.done)
  if (runtime.plan.timeout === undefined) return yield* done
  const finished = yield* Effect.timeoutOption(done, runtime.plan.timeout)
  if (Option.isNone(finished)) {
    return yield* new Abort({
      status: "timeout",
      reason: `${runtime.id} still running after its timeout of ${Duration.format(runtime.plan.timeout)}`
    })
  }
})

/** Stops whatever still runs and brings every service to DESTROYED; safe to call twice. */
export const teardown = Effect.fn("Service.teardown")(function* (attempt: Attempt) {
  yield* Effect.forEach(
    [...attempt.services.values()].reverse(),
    (runtime) =>
      Effect.gen(function* () {
        if (yield* Deferred.isDone(runtime.done)) return
        if (runtime.process === undefined) {
          // Every non-final state may move to DESTROYED (the machine's table): a failure here is a bug.
          yield* Effect.orDie(runtime.machine.transition("DESTROYED", "never started"))
          yield* Deferred.succeed(runtime.done, undefined)
          return
        }
        yield* Deferred.succeed(runtime.started, false)
        yield* runtime.process.stop(stopGrace)
        // The watcher publishes the exit; bounded so a lost process cannot hold the test forever.
        yield* Effect.ignore(
          Effect.timeoutOption(Deferred.await(runtime.done), Duration.sum(stopGrace, Duration.seconds(5)))
        )
      }),
    { concurrency: "unbounded", discard: true }
  )
  yield* Capture.stopAll(attempt)
})
