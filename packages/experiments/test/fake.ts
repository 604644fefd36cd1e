// What the unit tests of the harness share: running a plan on the fake environment of @testbed/plugins and the
// scripted runner of @testbed/commands, with TestClock moved on until the run ends. No process is started.
import { NodeServices } from "@effect/platform-node"
import { CommandRunner, type ScriptedRunner } from "@testbed/commands"
import { EventBus, TestbedEvent } from "@testbed/events"
import { FakeEnvironment, PluginRegistry } from "@testbed/plugins"
import { Effect, Fiber, FileSystem, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Experiment, ExperimentManager } from "../src/index.ts"
import { fixtures } from "./support.ts"

const decodeEvent = Schema.decodeUnknownSync(TestbedEvent.TestbedEvent)

/**
 * Moves TestClock on in small steps, letting real I/O (log files, run directory) finish between them: at most 20 ms
 * of Clock time per real millisecond, so only a disk stalled for a twentieth of a deadline could run it out.
 */
export const drive = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function* () {
    while (fiber.pollUnsafe() === undefined) {
      yield* TestClock.adjust("20 millis")
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    }
    return yield* Fiber.join(fiber)
  })

export interface Ran {
  readonly result: ExperimentManager.ExperimentResult
  readonly events: ReadonlyArray<TestbedEvent.TestbedEvent>
}

/** Runs `plan` with every event it publishes collected, TestClock driven until it ends. */
export const runCollecting = (
  plan: Parameters<typeof ExperimentManager.run>[0],
  registry: PluginRegistry.PluginRegistry["Service"]
) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const runDir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-harness-" })
    const events: Array<TestbedEvent.TestbedEvent> = []
    const bus = yield* EventBus.EventBus
    yield* bus.observe((batch) => Effect.sync(() => events.push(...batch.map((event) => decodeEvent(event)))))
    const fiber = yield* Effect.forkChild(ExperimentManager.run(plan, { runDir, registry }))
    return { result: yield* drive(fiber), events } satisfies Ran
  })

/**
 * Plans `fixtures/experiments/<file>` (or an absolute path) as a run would, then runs it on the fake environment;
 * `layer` adds services the run finds in its context (e.g. `ReplayServer.layerTest`).
 */
export const runOnFake = <ROut = never, E = never>(
  file: string,
  script: FakeEnvironment.Script,
  options: {
    readonly steps?: ScriptedRunner.Script
    readonly overrides?: Experiment.Options
    readonly layer?: Layer.Layer<ROut, E>
  } = {}
) => {
  const run = Effect.gen(function* () {
    const prepared = yield* Experiment.prepare(
      file.startsWith("/") ? file : `${fixtures}${file}`,
      options.overrides ?? {}
    )
    const registry = yield* PluginRegistry.PluginRegistry
    return yield* Effect.scoped(runCollecting(prepared.plan, registry))
  }).pipe(
    Effect.provide(
      Layer.unwrap(
        Effect.map(CommandRunner.CommandRunner, (runner) => FakeEnvironment.layerTest({ script, runner }))
      ).pipe(
        Layer.provideMerge(CommandRunner.CommandRunner.layerTest(options.steps ?? (() => ({})))),
        Layer.provideMerge(EventBus.EventBus.layer),
        Layer.provideMerge(NodeServices.layer)
      )
    ),
    Effect.scoped
  )
  return options.layer === undefined ? run : Effect.provide(run, options.layer)
}
