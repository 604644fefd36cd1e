/**
 * The seam between planning a run and executing one attempt of one test: the experiment manager asks this
 * service to run each attempt. The default (no service in context, or `layer`) runs it here, in this process,
 * with `TestCase.runAttempt`. `@testbed/cluster` provides one that runs it on a remote runner; experiments itself
 * knows nothing of SQL or clusters.
 *
 * An executor must behave like `TestCase.runAttempt` seen from the manager: publish the attempt's `test.started`
 * and `test.finished` (with `context.decide`'s answer) on the bus in context, leave the attempt's files under
 * `<runDir>/tests/<slug>/attempt-<n>`, and answer how the attempt ended.
 */
import { Context, Effect, Layer } from "effect"
import type { TestPlan } from "./Plan.ts"
// A cycle, on purpose: `layerTest` is the scripted executor, built from this service; nothing runs at import time.
import * as ScriptedExecutor from "./ScriptedExecutor.ts"
import * as TestCase from "./TestCase.ts"

/** What running one attempt needs from its context (the event bus, files, processes): the local run's. */
export type Requirements = Effect.Services<ReturnType<typeof TestCase.runAttempt>>

export class TestCaseExecutor extends Context.Service<
  TestCaseExecutor,
  {
    readonly runAttempt: (
      test: TestPlan,
      attempt: number,
      context: TestCase.AttemptContext
    ) => Effect.Effect<TestCase.AttemptResult, Effect.Error<ReturnType<typeof TestCase.runAttempt>>, Requirements>
    /**
     * Each attempt's certificate is made where the attempt runs (a remote runner makes its own): the manager makes
     * none, and needs no openssl here. Unset: the manager makes the run's one and hands it to every attempt.
     */
    readonly makesCertificates?: boolean | undefined
  }
>()("@testbed/experiments/TestCaseExecutor") {
  /** Every attempt in this process: today's local run. */
  static readonly local: TestCaseExecutor["Service"] = { runAttempt: TestCase.runAttempt }
  static readonly layer = Layer.succeed(TestCaseExecutor, TestCaseExecutor.local)
  /** Attempts played from a script on Effect's clock, nothing started (ScriptedExecutor): for unit tests. */
  static readonly layerTest = (script: ScriptedExecutor.Script) => ScriptedExecutor.layer(script)
}

/** The executor in context, or the local one when none was provided (local runs need nothing). */
export const current: Effect.Effect<TestCaseExecutor["Service"]> = Effect.map(
  Effect.serviceOption(TestCaseExecutor),
  (executor) => (executor._tag === "Some" ? executor.value : TestCaseExecutor.local)
)
