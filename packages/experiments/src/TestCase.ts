/**
 * One attempt of one test, walked on the test state machine: set up services and environment, deploy
 * (servers first, each ready before the next starts), run the steps, wait for the clients, check assertions,
 * tear down. A server that dies on its own ends the attempt at once with the reason. Whatever happens
 * (failure, timeout, interruption) the attempt's scope stops every process and a `test.finished` is published.
 */
import { EventBus, Machines, StateMachine, type TestEvent, type WriteFailed } from "@testbed/events"
import { Builtins, type Certificates, type EnvironmentPlugin } from "@testbed/plugins"
import { Cause, Clock, Deferred, type Duration, Effect, FileSystem, Option, Path, Ref, Scope } from "effect"
import { Abort, type Attempt, makeAttempt, setEnvironment, writeFailed } from "./internal/attempt.ts"
import * as Assertions from "./internal/assertions.ts"
import * as Capture from "./internal/capture.ts"
import * as Lifecycle from "./internal/lifecycle.ts"
import * as Execution from "./internal/execution.ts"
import { inside } from "./internal/runPath.ts"
import * as Services from "./internal/services.ts"
import * as Steps from "./internal/steps.ts"
import type { TestPlan } from "./Plan.ts"
import * as Replay from "./Replay.ts"

export interface AttemptContext {
  readonly runDir: string
  /** The experiment file's directory (`{{ experiment_dir }}`; relative replay scripts start there). */
  readonly experimentDir?: string | undefined
  readonly environment: EnvironmentPlugin.EnvironmentPlugin
  /** Where a service plugin came from (its `docker.build` is relative to it). */
  readonly pluginSource?: ((name: string) => string) | undefined
  readonly certificate: Certificates.Certificate | undefined
  readonly testLevelFastFail: boolean
  /** Time left for this attempt (the test's timeout, or less when the experiment's runs out sooner). */
  readonly timeout: Duration.Duration
  /** What a timeout means here: "test timed out after 30s", or the experiment's timeout when that comes first. */
  readonly timeoutMessage: string
  /** Why the run is stopping (fast-fail, experiment timeout), read when this attempt is interrupted. */
  readonly stopCause: Ref.Ref<Option.Option<{ readonly status: "interrupted" | "timeout"; readonly reason: string }>>
  /**
   * Called once when the attempt ends: whether another attempt follows, and whether this failure stops the
   * run (fast-fail). The manager decides; the answer goes into `test.finished`.
   */
  readonly decide: (status: TestEvent.TestStatus) => {
    readonly willRetry: boolean
    readonly fastFailTriggered: boolean
  }
}

export interface AttemptResult {
  readonly status: TestEvent.TestStatus
  readonly reason: string | undefined
  readonly durationMs: number
  readonly logsPath: string
}

interface Outcome {
  readonly status: TestEvent.TestStatus
  readonly reason: string | undefined
}

const emitArtifacts = Effect.fnUntraced(function* (attempt: Attempt) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  for (const runtime of attempt.services.values()) {
    const candidates = [
      { name: `${runtime.plan.key} stdout`, kind: "log" as const, path: runtime.stdoutPath },
      { name: `${runtime.plan.key} stderr`, kind: "log" as const, path: runtime.stderrPath },
      // A plugin's artifact outside the service's directory is not the service's: it is not reported.
      ...(yield* Effect.forEach(runtime.plan.plugin.artifacts ?? [], (artifact) =>
        Effect.map(Effect.option(inside(runtime.dir, artifact.path)), (file) =>
          file._tag === "None"
            ? []
            : [
                {
                  name: `${runtime.plan.key} ${artifact.name}`,
                  kind: artifact.kind,
                  path: file.value,
                  ...(artifact.description === undefined ? {} : { description: artifact.description })
                }
              ]
        )
      )).flat(),
      ...(runtime.capture === undefined
        ? []
        : [{ name: `${runtime.plan.key} capture`, kind: "capture" as const, path: runtime.capture.path }]),
      ...(yield* Execution.artifactsOf(runtime))
    ]
    for (const artifact of candidates) {
      if (!(yield* fs.exists(artifact.path).pipe(Effect.orElseSucceed(() => false)))) continue
      yield* EventBus.emit({
        type: "test.artifact",
        entityId: attempt.test.name,
        data: { ...artifact, path: path.relative(attempt.runDir, artifact.path), service: runtime.plan.key }
      })
    }
  }
})

/** What services read besides their own directory: the plugins' assets and the run's certificate directory. */
const readOnlyPathsOf = (context: AttemptContext): ReadonlyArray<string> => [
  Builtins.assetsDirectory,
  ...(context.certificate === undefined ? [] : [context.certificate.cert.replace(/\/[^/]*$/, "")])
]

/** The attempt's environment, set up in the launch scope and walked on its own machine; torn down with the scope. */
const setUpEnvironment = Effect.fn("TestCase.setUpEnvironment")(function* (
  attempt: Attempt,
  context: AttemptContext,
  launchScope: Scope.Scope
) {
  const test = attempt.test
  const environmentMachine = yield* StateMachine.make(Machines.Environment, `${test.name}/environment`)
  yield* environmentMachine.transition("INITIALIZING", "attempt started")
  yield* environmentMachine.transition("INITIALIZED", "plugin resolved", { plugin: context.environment.name })
  yield* environmentMachine.transition("SETTING_UP", "setup")
  const environment = yield* context.environment
    .setup({
      test: test.name,
      outputDir: attempt.dir,
      services: test.services.map((service) => ({
        key: service.key,
        plugin: service.plugin,
        source: context.pluginSource?.(service.plugin.name) ?? "builtin"
      })),
      readOnlyPaths: readOnlyPathsOf(context)
    })
    .pipe(
      Effect.provideService(Scope.Scope, launchScope),
      // SETTING_UP → ERROR is in the environment machine's table: an InvalidTransition here is a bug in the table,
      // and stays that error (the attempt reports it as an internal error), not the setup's failure.
      Effect.catch((error) =>
        Effect.andThen(
          environmentMachine.transition("ERROR", "setup failed", { reason: error.reason }),
          Effect.fail(new Abort({ status: "failed", reason: error.message }))
        )
      )
    )
  setEnvironment(attempt, environment)
  yield* Scope.addFinalizer(
    launchScope,
    // A finalizer cannot fail; these moves are in the table from READY (a failure is a bug in the table).
    Effect.orDie(
      Effect.gen(function* () {
        yield* environmentMachine.transition("TEARING_DOWN", "test over")
        yield* environmentMachine.transition("TORN_DOWN", "services stopped")
        yield* environmentMachine.transition("DESTROYING", "release")
        yield* environmentMachine.transition("DESTROYED", "released")
      })
    )
  )
  yield* environmentMachine.transition("SETUP", "setup done", { kind: environment.kind })
  yield* environmentMachine.transition("READY", "ready")
  yield* EventBus.emit({
    type: "environment.ready",
    entityId: `${test.name}/environment`,
    data: { kind: environment.kind, test: test.name, details: { host: environment.host } }
  })
})

/** A service that ended with an exit code its plugin declares "unsupported": the test is not one it can run. */
const unsupportedService = (attempt: Attempt): Abort | undefined => {
  const found = [...attempt.services.values()].find(
    (runtime) =>
      runtime.exit?.exitCode != null && (runtime.plan.plugin.unsupportedExitCodes ?? []).includes(runtime.exit.exitCode)
  )
  return found === undefined
    ? undefined
    : new Abort({
        status: "unsupported",
        reason: `${found.plan.key} (${found.plan.plugin.name}) does not support this test (exit code ${found.exit?.exitCode})`
      })
}

const flow = Effect.fn("TestCase.flow")(function* (
  attempt: Attempt,
  machine: StateMachine.StateMachine<Machines.TestState>,
  context: AttemptContext,
  launchScope: Scope.Scope
) {
  const test = attempt.test
  yield* machine.transition("SETTING_UP_SERVICES", "prepare services")
  for (const plan of test.services) yield* Services.prepare(attempt, plan)
  yield* machine.transition("SERVICES_SETUP", "services prepared", { services: test.services.map((s) => s.key) })

  yield* machine.transition("SETTING_UP_ENVIRONMENT", "set up environment", { environment: context.environment.name })
  yield* setUpEnvironment(attempt, context, launchScope)
  yield* machine.transition("ENVIRONMENT_SETUP", "environment ready", { kind: attempt.environment.kind })

  yield* machine.transition("DEPLOYING", "deploy services")
  yield* Services.deployAll(attempt)
  if (test.capture) yield* Capture.startAll(attempt, launchScope)
  yield* Lifecycle.beforeStart(attempt)
  for (const runtime of attempt.services.values()) yield* Services.start(attempt, runtime, launchScope)
  yield* machine.transition("DEPLOYED", "services ready")

  yield* machine.transition("EXECUTING", "run")
  yield* machine.transition("EXECUTING_STEPS", "steps", { steps: test.steps.length })
  yield* Steps.runAll(attempt, test.steps)
  for (const runtime of attempt.services.values()) {
    if (runtime.plan.lifetime === "task") yield* Services.awaitTask(runtime)
  }
  yield* Lifecycle.runAll(attempt, "post_run")

  yield* machine.transition("VALIDATING_ASSERTIONS", "check assertions", { assertions: test.assertions.length })
  const failures = yield* Assertions.checkAll(attempt, test.assertions, context.testLevelFastFail)
  yield* machine.transition("TEARING_DOWN", "teardown")
  yield* Services.teardown(attempt)
  const unsupported = unsupportedService(attempt)
  if (unsupported !== undefined) return yield* unsupported
  if (failures.length > 0) return yield* new Abort({ status: "failed", reason: failures.join("; ") })
})

/** One attempt as its end is recorded: which test, which attempt, where its files are, when it started. */
interface AttemptRecord {
  readonly test: TestPlan
  readonly number: number
  readonly dir: string
  readonly startedAt: number
  readonly machine: StateMachine.StateMachine<Machines.TestState>
  readonly context: AttemptContext
}

/**
 * Ends the test machine and publishes `test.finished` with the manager's decision. `stopping`: the run is stopping
 * (a file could not be written): no retry, no fast-fail, just the record.
 */
const finish = Effect.fn("TestCase.finish")(
  function* (record: AttemptRecord, status: TestEvent.TestStatus, reason: string | undefined, stopping = false) {
    const { test, machine, context } = record
    const path = yield* Path.Path
    const now = yield* Clock.currentTimeMillis
    const current = yield* machine.current
    if (status === "passed" && current === "TEARING_DOWN") yield* machine.transition("COMPLETED", "passed")
    else if (!StateMachine.isFinalState(Machines.Test, current)) {
      yield* machine.transition("FAILED", status, reason === undefined ? {} : { reason })
    }
    const { willRetry, fastFailTriggered } = stopping
      ? { willRetry: false, fastFailTriggered: false }
      : context.decide(status)
    yield* EventBus.emit({
      type: "test.finished",
      entityId: test.name,
      data: {
        name: test.name,
        attempt: record.number,
        status,
        durationMs: now - record.startedAt,
        ...(reason === undefined ? {} : { errorMessage: reason }),
        logsPath: path.relative(context.runDir, record.dir),
        ...(willRetry ? { willRetry } : {}),
        ...(fastFailTriggered ? { fastFailTriggered } : {})
      }
    })
    return { status, reason, durationMs: now - record.startedAt, logsPath: record.dir } satisfies AttemptResult
  },
  // COMPLETED and FAILED are reachable from every state that is not final: failing here is a bug in the table.
  Effect.orDie
)

/** The attempt's shared state, its templates' variables set from the context. */
const newAttempt = Effect.fn("TestCase.newAttempt")(function* (record: AttemptRecord) {
  const { test, number, dir, context } = record
  return makeAttempt({
    test,
    number,
    dir,
    runDir: context.runDir,
    variables: {
      test_dir: dir,
      run_dir: context.runDir,
      test: test.name,
      attempt: number,
      node: process.execPath,
      assets: Builtins.assetsDirectory,
      replay_server: Replay.serverAsset,
      experiment_dir: context.experimentDir ?? process.cwd(),
      ...(context.certificate === undefined ? {} : { ...context.certificate })
    },
    crashed: yield* Deferred.make<Abort>(),
    fatal: yield* Deferred.make<WriteFailed.WriteFailed>()
  })
})

/** The attempt's flow, raced against a crash and a write failure; its scope stops everything it started. */
const attemptBody = (record: AttemptRecord) =>
  Effect.scoped(
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      yield* record.machine.transition("SETTING_UP", `attempt ${record.number}`, { attempt: record.number })
      yield* fs.makeDirectory(record.dir, { recursive: true }).pipe(Effect.mapError(writeFailed(record.dir)))
      const attempt = yield* newAttempt(record)
      // Closed after the teardown below has stopped the services: it holds the processes, their watchers and
      // the environment, so nothing started for this attempt outlives it.
      const launchScope = yield* Scope.fork(yield* Effect.scope)
      yield* Effect.addFinalizer(() =>
        Effect.andThen(Services.teardown(attempt), Effect.ignore(emitArtifacts(attempt)))
      )
      yield* Effect.raceAllFirst([
        flow(attempt, record.machine, record.context, launchScope),
        Effect.flatMap(Deferred.await(attempt.crashed), Effect.fail),
        Effect.flatMap(Deferred.await(attempt.fatal), Effect.fail)
      ])
    })
  )

/** How the body ended, as a status and reason; only a write failure (the run stops) stays an error. */
const outcomeOf = (record: AttemptRecord) =>
  attemptBody(record).pipe(
    Effect.timeoutOption(record.context.timeout),
    Effect.flatMap(
      (completed): Effect.Effect<Outcome> =>
        Option.isSome(completed)
          ? Effect.succeed({ status: "passed", reason: undefined })
          : Effect.map(record.machine.current, (state) => ({
              status: "timeout",
              reason: `${record.context.timeoutMessage} (in ${state})`
            }))
    ),
    Effect.catch(
      (error): Effect.Effect<Outcome, WriteFailed.WriteFailed> =>
        error._tag === "WriteFailed"
          ? Effect.fail(error)
          : Effect.succeed(
              error._tag === "Abort"
                ? { status: error.status, reason: error.reason }
                : { status: "failed", reason: `internal error: ${error.message}` }
            )
    ),
    Effect.catchDefect(
      (defect): Effect.Effect<Outcome> =>
        Effect.succeed({ status: "failed", reason: `internal error: ${Cause.pretty(Cause.die(defect))}` })
    )
  )

export const runAttempt = Effect.fn("TestCase.runAttempt")(function* (
  test: TestPlan,
  number: number,
  context: AttemptContext
) {
  const path = yield* Path.Path
  const machine = yield* StateMachine.make(Machines.Test, test.name)
  const dir = path.join(context.runDir, "tests", test.slug, `attempt-${number}`)
  yield* EventBus.emit({
    type: "test.started",
    entityId: test.name,
    data: { name: test.name, attempt: number }
  })
  const record: AttemptRecord = { test, number, dir, startedAt: yield* Clock.currentTimeMillis, machine, context }
  const outcome = yield* outcomeOf(record).pipe(
    // Recorded as far as the record can still be written, then the run stops.
    Effect.tapError((error) => finish(record, "failed", `the run stopped: ${error.message}`, true)),
    Effect.onInterrupt(() =>
      Effect.flatMap(Ref.get(context.stopCause), (cause) =>
        Effect.asVoid(
          Option.match(cause, {
            onNone: () => finish(record, "interrupted", "run interrupted"),
            onSome: (stop) => finish(record, stop.status, stop.reason)
          })
        )
      )
    )
  )
  return yield* finish(record, outcome.status, outcome.reason)
})
