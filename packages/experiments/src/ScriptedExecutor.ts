/**
 * A TestCaseExecutor that starts nothing: each attempt plays what a script says — how long it runs on Effect's
 * clock, how it ends, which files it leaves in its directory — and behaves as `TestCase.runAttempt` does seen from
 * its caller: `test.started` and `test.finished` (with `context.decide`'s answer) on the bus in context, its files
 * under `<runDir>/tests/<slug>/attempt-<n>`, a timeout when it runs past `context.timeout`. For unit tests of what
 * runs attempts (the experiment manager, @testbed/cluster's runner). `TestCaseExecutor.layerTest` is this layer.
 */
import { EventBus, type TestEvent, WriteFailed } from "@testbed/events"
import { Clock, Duration, Effect, FileSystem, Layer, Option, Path } from "effect"
import type { TestPlan } from "./Plan.ts"
import * as TestCaseExecutor from "./TestCaseExecutor.ts"

/** What one attempt does. Default: it passes at once and leaves an empty directory. */
export interface AttemptScript {
  readonly status?: TestEvent.TestStatus | undefined
  readonly reason?: string | undefined
  /** How long it runs, on the Clock; past the attempt's timeout it ends as `timeout` (`context.timeoutMessage`). */
  readonly duration?: Duration.Input | undefined
  /** Files it leaves, by path relative to its directory. */
  readonly files?: Readonly<Record<string, string | Uint8Array>> | undefined
}

/** The script of each attempt (it sees the test and the attempt's number). */
export type Script = (test: TestPlan, attempt: number) => AttemptScript | Effect.Effect<AttemptScript>

const scripted = (script: Script, test: TestPlan, attempt: number): Effect.Effect<AttemptScript> => {
  const played = script(test, attempt)
  return Effect.isEffect(played) ? played : Effect.succeed(played)
}

/** Writes the attempt's files, parents first; a refusal is the run's WriteFailed, as with a real attempt. */
const leaveFiles = Effect.fn("ScriptedExecutor.leaveFiles")(function* (
  dir: string,
  files: Readonly<Record<string, string | Uint8Array>>
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const failed = (file: string) => (error: unknown) => WriteFailed.fromError(file, error)
  yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(failed(dir)))
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name)
    yield* fs.makeDirectory(path.dirname(file), { recursive: true }).pipe(Effect.mapError(failed(file)))
    const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content
    yield* fs.writeFile(file, bytes).pipe(Effect.mapError(failed(file)))
  }
})

/** The executor playing `script`. */
export const make = (script: Script): TestCaseExecutor.TestCaseExecutor["Service"] => ({
  runAttempt: Effect.fn("ScriptedExecutor.runAttempt")(function* (test, attempt, context) {
    const path = yield* Path.Path
    const startedAt = yield* Clock.currentTimeMillis
    const dir = path.join(context.runDir, "tests", test.slug, `attempt-${attempt}`)
    yield* EventBus.emit({ type: "test.started", entityId: test.name, data: { name: test.name, attempt } })
    const played = yield* scripted(script, test, attempt)
    const ran = yield* Effect.sleep(Duration.fromInputUnsafe(played.duration ?? Duration.zero)).pipe(
      Effect.timeoutOption(context.timeout)
    )
    yield* leaveFiles(dir, played.files ?? {})
    const [status, reason] = Option.isNone(ran)
      ? (["timeout", context.timeoutMessage] as const)
      : ([played.status ?? "passed", played.reason] as const)
    const durationMs = (yield* Clock.currentTimeMillis) - startedAt
    const { willRetry, fastFailTriggered } = context.decide(status)
    yield* EventBus.emit({
      type: "test.finished",
      entityId: test.name,
      data: {
        name: test.name,
        attempt,
        status,
        durationMs,
        ...(reason === undefined ? {} : { errorMessage: reason }),
        logsPath: path.relative(context.runDir, dir),
        ...(willRetry ? { willRetry } : {}),
        ...(fastFailTriggered ? { fastFailTriggered } : {})
      }
    })
    return { status, reason, durationMs, logsPath: dir }
  })
})

/** The executor in context playing `script`. */
export const layer = (script: Script): Layer.Layer<TestCaseExecutor.TestCaseExecutor> =>
  Layer.succeed(TestCaseExecutor.TestCaseExecutor, make(script))
