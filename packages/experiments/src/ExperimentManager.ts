/**
 * Runs a planned experiment on the experiment state machine: registers every test, runs them side by side up
 * to the concurrency limit, retries failures (a later pass makes the test flaky), stops everything at the
 * first failure when fast-fail is on, and ends tests still running when the experiment's timeout passes.
 * Interrupted (Ctrl-C) it still publishes how every test ended, so the event log tells the whole story.
 */
import { EventBus, Machines, StateMachine, type TestEvent, type WriteFailed } from "@testbed/events"
import { Certificates, type PluginRegistry } from "@testbed/plugins"
import { Clock, Deferred, Duration, Effect, Fiber, Option, Path, Ref } from "effect"
import * as DockerImages from "./DockerImages.ts"
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

export const run = Effect.fn("ExperimentManager.run")(function* (plan: ExperimentPlan, options: RunOptions) {
  const bus = yield* EventBus.EventBus
  const path = yield* Path.Path
  const machine = yield* StateMachine.make(Machines.Experiment, plan.name)
  const results = new Map<string, TestResult>()
  const started = new Set<string>()
  const stopCause = yield* Ref.make(
    Option.none<{ readonly status: "interrupted" | "timeout"; readonly reason: string }>()
  )
  const stop = yield* Deferred.make<void>()
  let stopping: { readonly reason: string; readonly fastFail: boolean } | undefined

  yield* bus.emit({
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
  yield* machine.transition("INITIALIZING", "run")
  yield* machine.transition("LOADING_PLUGINS", "resolve plugins")
  const environments = new Map(
    yield* Effect.forEach(plan.tests, (test) =>
      Effect.map(Effect.orDie(options.registry.environment(test.environment)), (plugin) => [test.name, plugin] as const)
    )
  )
  yield* machine.transition("PLUGINS_LOADED", "plugins resolved", {
    services: [...new Set(plan.tests.flatMap((test) => test.services.map((service) => service.plugin.name)))]
  })
  yield* machine.transition("INITIALIZING_TESTS", "register tests")
  for (const test of plan.tests) {
    yield* bus.emit({
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
  let imagesBuilt: number | undefined
  const certificate = plan.needsCertificate
    ? yield* Effect.result(Certificates.selfSigned(path.join(options.runDir, "certs")))
    : undefined
  if (certificate !== undefined && certificate._tag === "Failure") {
    const reason = certificate.failure.message
    for (const test of plan.tests) yield* skip(test, `not run: ${reason}`, "failed")
    yield* machine.transition("FAILED", "certificate", { reason })
    yield* finished("failed", reason, false)
    return { status: "failed", reason, tests: [...results.values()] } satisfies ExperimentResult
  }
  // Images of the docker tests' implementations, built before any test so build time is no test's time.
  imagesBuilt = yield* DockerImages.prepare(plan.tests).pipe(Effect.provideService(EventBus.EventBus, bus))
  yield* machine.transition("TESTS_INITIALIZED", "tests registered", { tests: plan.tests.length })
  yield* machine.transition("RUNNING", "run tests", { concurrency: plan.concurrency })

  function skip(test: TestPlan, reason: string, status: TestEvent.TestStatus = "skipped") {
    results.set(test.name, { name: test.name, status, attempts: 0, flaky: false, reason })
    return bus.emit({
      type: "test.finished",
      entityId: test.name,
      data: { name: test.name, attempt: 1, status, durationMs: 0, errorMessage: reason }
    })
  }
  function finished(status: ExperimentResult["status"], reason: string | undefined, fastFailTriggered: boolean) {
    // What the run left on disk, measured before the end is recorded (PANTHER's resources block); never fatal.
    const usage = Effect.ignore(
      RunUsage.publish(options.runDir, plan.name, imagesBuilt).pipe(Effect.provideService(EventBus.EventBus, bus))
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
  const stopRun = (cause: { readonly status: "interrupted" | "timeout"; readonly reason: string }) =>
    Effect.andThen(Ref.set(stopCause, Option.some(cause)), Deferred.succeed(stop, undefined))

  const startMillis = yield* Clock.currentTimeMillis
  const executor = yield* TestCaseExecutor.current
  const runTest = Effect.fnUntraced(function* (test: TestPlan) {
    for (let attempt = 1; ; attempt++) {
      if (stopping !== undefined) return yield* skip(test, `not run: ${stopping.reason}`)
      const now = yield* Clock.currentTimeMillis
      const remaining =
        plan.timeout === undefined
          ? test.timeout
          : Duration.millis(Duration.toMillis(plan.timeout) - (now - startMillis))
      if (plan.timeout !== undefined && Duration.toMillis(remaining) <= 0) {
        // The deadline passed between two tests, perhaps before its own fiber ran: nothing more starts.
        stopping ??= { reason: `experiment timeout of ${Duration.format(plan.timeout)} reached`, fastFail: false }
        return yield* skip(test, `not run: ${stopping.reason}`)
      }
      started.add(test.name)
      let claimedFastFail = false
      const decide = (status: TestEvent.TestStatus) => {
        const willRetry = failing(status) && attempt <= test.retries && stopping === undefined
        const fastFailTriggered = failing(status) && !willRetry && plan.fastFail && stopping === undefined
        if (fastFailTriggered) {
          // Claimed synchronously so two tests failing together cannot both trigger it.
          claimedFastFail = true
          stopping = { reason: `fast-fail: ${test.name} ${status}`, fastFail: true }
        }
        return { willRetry, fastFailTriggered }
      }
      const outcome = yield* Effect.raceFirst(
        executor.runAttempt(test, attempt, {
          runDir: options.runDir,
          experimentDir: options.configurationFile === undefined ? undefined : path.dirname(options.configurationFile),
          environment: environments.get(test.name)!,
          pluginSource: (name) =>
            options.registry.services.find((registered) => registered.plugin.name === name)?.source ?? "builtin",
          certificate: certificate?._tag === "Success" ? certificate.success : undefined,
          testLevelFastFail: plan.testLevelFastFail,
          timeout: Duration.min(test.timeout, remaining),
          timeoutMessage: Duration.isLessThan(remaining, test.timeout)
            ? `experiment timeout of ${Duration.format(plan.timeout!)} reached`
            : `test timed out after ${Duration.format(test.timeout)}`,
          stopCause,
          decide
        }),
        Effect.as(Deferred.await(stop), undefined)
      )
      if (outcome === undefined) {
        // Interrupted by fast-fail or the experiment's timeout; the attempt published how it ended.
        const cause = Option.getOrUndefined(yield* Ref.get(stopCause))
        const status = cause?.status ?? "interrupted"
        results.set(test.name, { name: test.name, status, attempts: attempt, flaky: false, reason: cause?.reason })
        return
      }
      const retrying = failing(outcome.status) && attempt <= test.retries && stopping === undefined
      if (retrying) continue
      results.set(test.name, {
        name: test.name,
        status: outcome.status,
        attempts: attempt,
        flaky: outcome.status === "passed" && attempt > 1,
        reason: outcome.reason
      })
      if (claimedFastFail) {
        const reason = `fast-fail: ${test.name} ${outcome.status}${outcome.reason === undefined ? "" : `: ${outcome.reason}`}`
        stopping = { reason, fastFail: true }
        yield* stopRun({ status: "interrupted", reason: `stopped by ${reason}` })
      }
      return
    }
  })

  const deadline =
    plan.timeout === undefined
      ? undefined
      : yield* Effect.forkChild(
          Effect.gen(function* () {
            yield* Effect.sleep(plan.timeout!)
            const reason = `experiment timeout of ${Duration.format(plan.timeout!)} reached`
            stopping ??= { reason, fastFail: false }
            yield* stopRun({ status: "timeout", reason })
          })
        )

  const abort = (options.abortOn ?? Effect.never).pipe(
    // Read by the tests it interrupts: they end saying why.
    Effect.tapError((error) =>
      Ref.set(stopCause, Option.some({ status: "interrupted" as const, reason: `the run stopped: ${error.message}` }))
    )
  )
  yield* Effect.raceFirst(
    Effect.forEach(plan.tests, runTest, { concurrency: plan.concurrency, discard: true }),
    abort
  ).pipe(
    Effect.onInterrupt(() =>
      Effect.gen(function* () {
        for (const test of plan.tests) {
          if (!started.has(test.name) && !results.has(test.name)) yield* skip(test, "not run: the run was interrupted")
        }
        yield* Effect.orDie(machine.transition("FINISHED_EARLY", "interrupted"))
        yield* finished("interrupted", "the run was interrupted", false)
      })
    ),
    // A file of the run could not be written (a full disk): the tests still running were interrupted; the rest
    // are recorded as not run, as far as the record can still be written, and the run fails with the error.
    Effect.tapError((error) =>
      Effect.gen(function* () {
        const reason = `the run stopped: ${error.message}`
        for (const test of plan.tests) {
          if (!started.has(test.name) && !results.has(test.name)) yield* skip(test, `not run: ${reason}`)
        }
        yield* Effect.orDie(machine.transition("FAILED", "write failed", { reason }))
        yield* finished("failed", reason, false)
      })
    )
  )
  if (deadline !== undefined) yield* Fiber.interrupt(deadline)

  const all = plan.tests.map((test) => results.get(test.name)!).filter((result) => result !== undefined)
  if (stopping !== undefined) {
    yield* machine.transition("FINISHED_EARLY", stopping.fastFail ? "fast-fail" : "timeout", {
      reason: stopping.reason
    })
    yield* finished("finished_early", stopping.reason, stopping.fastFail)
    return { status: "finished_early", reason: stopping.reason, tests: all } satisfies ExperimentResult
  }
  yield* machine.transition("COLLECTING_RESULTS", "tests done")
  const bad = all.filter(
    (test) => !(test.status === "passed" || test.status === "skipped" || test.status === "unsupported")
  )
  if (bad.length > 0) {
    const reason = `${bad.length} of ${all.length} test(s) did not pass: ${bad.map((test) => test.name).join(", ")}`
    yield* machine.transition("FAILED", "tests failed", { failed: bad.length })
    yield* finished("failed", reason, false)
    return { status: "failed", reason, tests: all } satisfies ExperimentResult
  }
  yield* machine.transition("COMPLETED", "all tests passed")
  yield* finished("completed", undefined, false)
  return { status: "completed", reason: undefined, tests: all } satisfies ExperimentResult
})
