/**
 * Runs a planned experiment on the experiment state machine: registers every test, runs them side by side up
 * to the concurrency limit, retries failures (a later pass makes the test flaky), stops everything at the
 * first failure when fast-fail is on, and ends tests still running when the experiment's timeout passes.
 * Interrupted (Ctrl-C) it still publishes how every test ended, so the event log tells the whole story.
 */
import { EventBus, Machines, StateMachine, type TestEvent, type WriteFailed } from "@testbed/events"
import { Certificates, type EnvironmentPlugin, type PluginRegistry } from "@testbed/plugins"
import { Clock, Deferred, Duration, Effect, Fiber, Option, Path, Ref, type Result } from "effect"
import type * as DockerImagesModule from "./DockerImages.ts"
import * as RunUsage from "./internal/runUsage.ts"
import type { ExperimentPlan, TestPlan } from "./Plan.ts"
import * as TestCaseExecutor from "./TestCaseExecutor.ts"

export interface RunOptions {
  readonly runDir: string
  readonly configurationFile?: string | undefined
  readonly registry: PluginRegistry.PluginRegistry["Service"]
  /** Fails when the run must stop because its record cannot be written (the event log's `failed`). */
  readonly abortOn?: Effect.Effect<never, WriteFailed.WriteFailed> | undefined
}

export interface TestResult {
  readonly name: string
  readonly status: TestEvent.TestStatus
  readonly attempts: number
  /** Passed after an attempt that did not. */
  readonly flaky: boolean
  readonly reason: string | undefined
}

export interface ExperimentResult {
  readonly status: "completed" | "failed" | "finished_early" | "interrupted"
  readonly reason: string | undefined
  readonly tests: ReadonlyArray<TestResult>
}

/** A run succeeds when no test failed, timed out or was interrupted (skipped and unsupported do not fail it). */
export const succeeded = (result: ExperimentResult): boolean =>
  result.tests.every((test) => test.status === "passed" || test.status === "skipped" || test.status === "unsupported")

const failing = (status: TestEvent.TestStatus) => status === "failed" || status === "timeout"

type StopCause = { readonly status: "interrupted" | "timeout"; readonly reason: string }

/**
 * What the steps of one run share, and who writes it: `results` is written by `skip` and `runTest` (once per
 * test), `started` by `runTest`; `stopping` (why nothing more starts) is claimed synchronously by the first of
 * fast-fail, the experiment's deadline or a test found past it; `stopCause`/`stop` tell running attempts why they are
 * interrupted (`stopRun`); `imagesBuilt` is written once, by `run`, before any test starts.
 */
interface RunState {
  readonly plan: ExperimentPlan
  readonly options: RunOptions
  readonly bus: EventBus.EventBus["Service"]
  readonly machine: StateMachine.StateMachine<Machines.ExperimentState>
  readonly results: Map<string, TestResult>
  readonly started: Set<string>
  readonly stopCause: Ref.Ref<Option.Option<StopCause>>
  readonly stop: Deferred.Deferred<void>
  readonly stopping: { current: { readonly reason: string; readonly fastFail: boolean } | undefined }
  readonly imagesBuilt: { current: number | undefined }
}

const announce = Effect.fn("ExperimentManager.announce")(function* (state: RunState) {
  const { plan, options } = state
  yield* state.bus.emit({
    type: "experiment.started",
    entityId: plan.name,
    data: {
      name: plan.name,
      ...(options.configurationFile === undefined ? {} : { configurationFile: options.configurationFile }),
      outputDir: options.runDir,
      settings: {
        concurrency: plan.concurrency,
        tests: plan.tests.length,
        fastFail: plan.fastFail,
        ...(plan.timeout === undefined ? {} : { timeout: Duration.format(plan.timeout) }),
        environments: [...new Set(plan.tests.map((test) => test.environment))]
      }
    }
  })
})

/** Each test's environment plugin; the plan checked every name against the same registry. */
const resolveEnvironments = Effect.fn("ExperimentManager.resolveEnvironments")(function* (state: RunState) {
  const { plan, machine, options } = state
  yield* machine.transition("LOADING_PLUGINS", "resolve plugins")
  const environments = new Map(
    yield* Effect.forEach(plan.tests, (test) =>
      Effect.map(options.registry.environment(test.environment), (plugin) => [test.name, plugin] as const)
    )
  )
  yield* machine.transition("PLUGINS_LOADED", "plugins resolved", {
    services: [...new Set(plan.tests.flatMap((test) => test.services.map((service) => service.plugin.name)))]
  })
  return environments as ReadonlyMap<string, EnvironmentPlugin.EnvironmentPlugin>
})

const registerTests = Effect.fn("ExperimentManager.registerTests")(function* (state: RunState) {
  yield* state.machine.transition("INITIALIZING_TESTS", "register tests")
  for (const test of state.plan.tests) {
    yield* state.bus.emit({
      type: "test.registered",
      entityId: test.name,
      data: {
        name: test.name,
        ...(test.description === undefined ? {} : { description: test.description }),
        participants: test.services.map((service) => ({
          service: service.key,
          implementation: service.plugin.name,
          type: service.type,
          role: service.role,
          version: service.version
        })),
        ...(test.matrix === undefined ? {} : { matrix: test.matrix })
      }
    })
  }
})

/** A test that does not run: recorded as ended with `status` (skipped unless said otherwise). */
const skip = (state: RunState, test: TestPlan, reason: string, status: TestEvent.TestStatus = "skipped") => {
  state.results.set(test.name, { name: test.name, status, attempts: 0, flaky: false, reason })
  return state.bus.emit({
    type: "test.finished",
    entityId: test.name,
    data: { name: test.name, attempt: 1, status, durationMs: 0, errorMessage: reason }
  })
}

/** Every test that neither started nor ended is recorded as not run, for `reason`. */
const skipNotStarted = (state: RunState, reason: string) =>
  Effect.forEach(
    state.plan.tests.filter((test) => !state.started.has(test.name) && !state.results.has(test.name)),
    (test) => skip(state, test, reason),
    { discard: true }
  )

const finished = (
  state: RunState,
  status: ExperimentResult["status"],
  reason: string | undefined,
  fastFailTriggered: boolean
) => {
  const { bus, options, plan } = state
  // What the run left on disk, measured before the end is recorded (PANTHER's resources block); never fatal.
  const usage = Effect.ignore(
    RunUsage.publish(options.runDir, plan.name, state.imagesBuilt.current).pipe(
      Effect.provideService(EventBus.EventBus, bus)
    )
  )
  return Effect.andThen(
    usage,
    bus.emit({
      type: "experiment.finished",
      entityId: plan.name,
      data: {
        status,
        ...(reason === undefined ? {} : { reason }),
        ...(fastFailTriggered ? { fastFailTriggered } : {})
      }
    })
  )
}

const stopRun = (state: RunState, cause: StopCause) =>
  Effect.andThen(Ref.set(state.stopCause, Option.some(cause)), Deferred.succeed(state.stop, undefined))

/** What every attempt of the run is given besides its test. */
interface Shared {
  readonly environments: ReadonlyMap<string, EnvironmentPlugin.EnvironmentPlugin>
  readonly certificate: Certificates.Certificate | undefined
  readonly executor: TestCaseExecutor.TestCaseExecutor["Service"]
  readonly startMillis: number
  readonly experimentDir: string | undefined
}

/** Time left for the test: its own timeout, or what is left of the experiment's. */
const remainingFor = Effect.fn("ExperimentManager.remainingFor")(function* (
  plan: ExperimentPlan,
  test: TestPlan,
  startMillis: number
) {
  const now = yield* Clock.currentTimeMillis
  return plan.timeout === undefined
    ? test.timeout
    : Duration.millis(Duration.toMillis(plan.timeout) - (now - startMillis))
})

/**
 * One attempt, raced against the run's stop signal (undefined: stopped). `claimed` is set when this attempt's end
 * claimed fast-fail, synchronously so two tests failing together cannot both trigger it.
 */
const attemptOnce = (
  state: RunState,
  shared: Shared,
  test: TestPlan,
  attempt: number,
  remaining: Duration.Duration,
  claimed: { fastFail: boolean }
) => {
  const { plan, options, stopping } = state
  const decide = (status: TestEvent.TestStatus) => {
    const willRetry = failing(status) && attempt <= test.retries && stopping.current === undefined
    const fastFailTriggered = failing(status) && !willRetry && plan.fastFail && stopping.current === undefined
    if (fastFailTriggered) {
      claimed.fastFail = true
      stopping.current = { reason: `fast-fail: ${test.name} ${status}`, fastFail: true }
    }
    return { willRetry, fastFailTriggered }
  }
  return Effect.raceFirst(
    shared.executor.runAttempt(test, attempt, {
      runDir: options.runDir,
      experimentDir: shared.experimentDir,
      environment: shared.environments.get(test.name)!,
      pluginSource: (name) =>
        options.registry.services.find((registered) => registered.plugin.name === name)?.source ?? "builtin",
      certificate: shared.certificate,
      testLevelFastFail: plan.testLevelFastFail,
      timeout: Duration.min(test.timeout, remaining),
      timeoutMessage: Duration.isLessThan(remaining, test.timeout)
        ? `experiment timeout of ${Duration.format(plan.timeout!)} reached`
        : `test timed out after ${Duration.format(test.timeout)}`,
      stopCause: state.stopCause,
      decide
    }),
    Effect.as(Deferred.await(state.stop), undefined)
  )
}

/** A test's attempts until one passes, retries run out, or the run stops; its result recorded. */
const runTest = Effect.fn("ExperimentManager.runTest")(function* (state: RunState, shared: Shared, test: TestPlan) {
  const { plan, stopping, results } = state
  for (let attempt = 1; ; attempt++) {
    if (stopping.current !== undefined) return yield* skip(state, test, `not run: ${stopping.current.reason}`)
    const remaining = yield* remainingFor(plan, test, shared.startMillis)
    if (plan.timeout !== undefined && Duration.toMillis(remaining) <= 0) {
      // The deadline passed between two tests, perhaps before its own fiber ran: nothing more starts.
      stopping.current ??= { reason: `experiment timeout of ${Duration.format(plan.timeout)} reached`, fastFail: false }
      return yield* skip(state, test, `not run: ${stopping.current.reason}`)
    }
    state.started.add(test.name)
    const claimed = { fastFail: false }
    const outcome = yield* attemptOnce(state, shared, test, attempt, remaining, claimed)
    if (outcome === undefined) {
      // Interrupted by fast-fail or the experiment's timeout; the attempt published how it ended.
      const cause = Option.getOrUndefined(yield* Ref.get(state.stopCause))
      const status = cause?.status ?? "interrupted"
      results.set(test.name, { name: test.name, status, attempts: attempt, flaky: false, reason: cause?.reason })
      return
    }
    if (failing(outcome.status) && attempt <= test.retries && stopping.current === undefined) continue
    results.set(test.name, {
      name: test.name,
      status: outcome.status,
      attempts: attempt,
      flaky: outcome.status === "passed" && attempt > 1,
      reason: outcome.reason
    })
    if (claimed.fastFail) {
      const reason = `fast-fail: ${test.name} ${outcome.status}${outcome.reason === undefined ? "" : `: ${outcome.reason}`}`
      stopping.current = { reason, fastFail: true }
      yield* stopRun(state, { status: "interrupted", reason: `stopped by ${reason}` })
    }
    return
  }
})

/** When the experiment's timeout passes, nothing more starts and running tests are stopped. */
const deadlineOf = Effect.fn("ExperimentManager.deadline")(function* (state: RunState, timeout: Duration.Duration) {
  yield* Effect.sleep(timeout)
  const reason = `experiment timeout of ${Duration.format(timeout)} reached`
  state.stopping.current ??= { reason, fastFail: false }
  yield* stopRun(state, { status: "timeout", reason })
})

/** Every test, up to the concurrency limit; ended early by an interrupt or a record that cannot be written. */
const runTests = Effect.fn("ExperimentManager.runTests")(function* (state: RunState, shared: Shared) {
  const { plan, options, machine } = state
  const abort = (options.abortOn ?? Effect.never).pipe(
    // Read by the tests it interrupts: they end saying why.
    Effect.tapError((error) =>
      Ref.set(
        state.stopCause,
        Option.some({ status: "interrupted" as const, reason: `the run stopped: ${error.message}` })
      )
    )
  )
  yield* Effect.raceFirst(
    Effect.forEach(plan.tests, (test) => runTest(state, shared, test), {
      concurrency: plan.concurrency,
      discard: true
    }),
    abort
  ).pipe(
    Effect.onInterrupt(() =>
      Effect.gen(function* () {
        yield* skipNotStarted(state, "not run: the run was interrupted")
        // RUNNING → FINISHED_EARLY is in the machine's table: failing here is a bug in the table, not a run's fault.
        yield* Effect.orDie(machine.transition("FINISHED_EARLY", "interrupted"))
        yield* finished(state, "interrupted", "the run was interrupted", false)
      })
    ),
    // A file of the run could not be written (a full disk): the tests still running were interrupted; the rest
    // are recorded as not run, as far as the record can still be written, and the run fails with the error.
    Effect.tapError((error) =>
      Effect.gen(function* () {
        const reason = `the run stopped: ${error.message}`
        yield* skipNotStarted(state, `not run: ${reason}`)
        // RUNNING → FAILED is in the machine's table (as above); the write error is what the run fails with.
        yield* Effect.orDie(machine.transition("FAILED", "write failed", { reason }))
        yield* finished(state, "failed", reason, false)
      })
    )
  )
})

/** The run's end as recorded: finished early, failed (some test did not pass) or completed. */
const conclude = Effect.fn("ExperimentManager.conclude")(function* (state: RunState) {
  const { plan, machine, stopping } = state
  const all = plan.tests.map((test) => state.results.get(test.name)!).filter((result) => result !== undefined)
  if (stopping.current !== undefined) {
    const { reason, fastFail } = stopping.current
    yield* machine.transition("FINISHED_EARLY", fastFail ? "fast-fail" : "timeout", { reason })
    yield* finished(state, "finished_early", reason, fastFail)
    return { status: "finished_early", reason, tests: all } satisfies ExperimentResult
  }
  yield* machine.transition("COLLECTING_RESULTS", "tests done")
  const bad = all.filter(
    (test) => !(test.status === "passed" || test.status === "skipped" || test.status === "unsupported")
  )
  if (bad.length > 0) {
    const reason = `${bad.length} of ${all.length} test(s) did not pass: ${bad.map((test) => test.name).join(", ")}`
    yield* machine.transition("FAILED", "tests failed", { failed: bad.length })
    yield* finished(state, "failed", reason, false)
    return { status: "failed", reason, tests: all } satisfies ExperimentResult
  }
  yield* machine.transition("COMPLETED", "all tests passed")
  yield* finished(state, "completed", undefined, false)
  return { status: "completed", reason: undefined, tests: all } satisfies ExperimentResult
})

/** The certificate failed: every test is recorded as not run and the run fails. */
const certificateFailed = Effect.fn("ExperimentManager.certificateFailed")(function* (state: RunState, reason: string) {
  for (const test of state.plan.tests) yield* skip(state, test, `not run: ${reason}`, "failed")
  yield* state.machine.transition("FAILED", "certificate", { reason })
  yield* finished(state, "failed", reason, false)
  return { status: "failed", reason, tests: [...state.results.values()] } satisfies ExperimentResult
})

/**
 * Images of the docker tests' implementations, built before any test so build time is no test's time. Loaded only
 * when a test runs in docker: a local run does not load the engine's client (LazyModules.test.ts). A module that
 * cannot load, or a build that fails, is the docker tests' own failure: their setup loads and builds again and says
 * why, so neither stops the run here.
 */
const prepareImages = Effect.fn("ExperimentManager.prepareImages")(function* (state: RunState) {
  if (!state.plan.tests.some((test) => test.environment === "docker")) return undefined
  const loaded = yield* Effect.tryPromise(() => import("./DockerImages.ts") as Promise<typeof DockerImagesModule>).pipe(
    Effect.option
  )
  if (Option.isNone(loaded)) return undefined
  return yield* loaded.value.prepare(state.plan.tests).pipe(Effect.provideService(EventBus.EventBus, state.bus))
})

export const run = Effect.fn("ExperimentManager.run")(function* (plan: ExperimentPlan, options: RunOptions) {
  const path = yield* Path.Path
  const state: RunState = {
    plan,
    options,
    bus: yield* EventBus.EventBus,
    machine: yield* StateMachine.make(Machines.Experiment, plan.name),
    results: new Map(),
    started: new Set(),
    stopCause: yield* Ref.make(Option.none<StopCause>()),
    stop: yield* Deferred.make<void>(),
    stopping: { current: undefined },
    imagesBuilt: { current: undefined }
  }
  yield* announce(state)
  yield* state.machine.transition("INITIALIZING", "run")
  const environments = yield* resolveEnvironments(state)
  yield* registerTests(state)
  const executor = yield* TestCaseExecutor.current
  const certificate: Result.Result<Certificates.Certificate, { readonly message: string }> | undefined =
    plan.needsCertificate && executor.makesCertificates !== true
      ? yield* Effect.result(Certificates.selfSigned(path.join(options.runDir, "certs")))
      : undefined
  if (certificate !== undefined && certificate._tag === "Failure") {
    return yield* certificateFailed(state, certificate.failure.message)
  }
  state.imagesBuilt.current = yield* prepareImages(state)
  yield* state.machine.transition("TESTS_INITIALIZED", "tests registered", { tests: plan.tests.length })
  yield* state.machine.transition("RUNNING", "run tests", { concurrency: plan.concurrency })

  const shared: Shared = {
    environments,
    certificate: certificate?._tag === "Success" ? certificate.success : undefined,
    executor,
    startMillis: yield* Clock.currentTimeMillis,
    experimentDir: options.configurationFile === undefined ? undefined : path.dirname(options.configurationFile)
  }
  const deadline = plan.timeout === undefined ? undefined : yield* Effect.forkChild(deadlineOf(state, plan.timeout))
  yield* runTests(state, shared)
  if (deadline !== undefined) yield* Fiber.interrupt(deadline)
  return yield* conclude(state)
})
