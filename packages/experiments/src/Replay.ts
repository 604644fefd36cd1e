/**
 * Replay in experiments, through @testbed/replay: the `replay` service plugin (testbed's own replay server
 * playing a recorded peer as a service) and the helpers the `replay` step and the `replay_passed` assertion
 * share — loading a script with its blobs, and the outcome file a replay leaves behind. @testbed/replay itself is
 * loaded when a run first uses a replay (`load`): planning, `--dry-run` and runs without replays never load it.
 */
import { createRequire } from "node:module"
import { ServicePlugin } from "@testbed/plugins"
import type { ScriptLoader, Verdict } from "@testbed/replay"
import { Effect, Layer, Path, Schema } from "effect"

/** @testbed/replay could not be loaded (an installation without it, or a broken one). */
export class ReplayUnavailable extends Schema.TaggedError<ReplayUnavailable>()("ReplayUnavailable", {
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot load @testbed/replay: ${this.reason}`
  }
}

/** @testbed/replay, loaded on first use (Node keeps the module: later calls cost nothing). */
export const load: Effect.Effect<typeof import("@testbed/replay"), ReplayUnavailable> = Effect.tryPromise({
  try: () => import("@testbed/replay"),
  catch: (error) => new ReplayUnavailable({ reason: String(error) })
})

/**
 * The replay server process @testbed/replay ships (run with the harness's Node; arguments and exit codes in its
 * ServeProcess): its TypeScript source in a checkout, its compiled JavaScript in an installed package.
 */
export const serverAsset: string = createRequire(import.meta.url).resolve("@testbed/replay/bin/serve")

/** The outcome file a replay service writes into its directory; `replay_passed` reads it. */
export const outcomeFile = "replay-outcome.json"

/**
 * A replay server is a `task`: it serves its `connections`, writes the outcome and exits 0 (passed) or 1. Its
 * readiness is the "listening" line, not a TCP probe: the replay server would count a probe's connection as a
 * client's and fail the script.
 */
export const plugin: ServicePlugin.ServicePlugin = ServicePlugin.make({
  name: "replay",
  type: "tester",
  description: "testbed's replay server: plays the server side of a recorded script, failing on the first divergence",
  protocols: ["tcp"],
  versions: ["bundled"],
  roles: {
    server: {
      command: {
        program: "{{ node }}",
        args: [
          "{{ replay_server }}",
          "--script",
          "{{ script }}",
          "--name",
          "{{ name }}",
          "--host",
          "{{ host }}",
          "--port",
          "{{ port }}",
          "--connections",
          "{{ connections }}",
          "--step-timeout",
          "{{ step_timeout }}",
          "--outcome",
          "{{ service_dir }}/replay-outcome.json"
        ]
      },
      readiness: { kind: "log", pattern: "Test server listening on", timeout: "20 seconds" },
      lifetime: "task",
      parameters: {
        script: {
          type: "path",
          required: true,
          description: "The recorded script (JSON); templates allowed, e.g. {{ experiment_dir }}/session-1.json"
        },
        name: { type: "string", default: "recorded_script", description: "The entry of the script file to play" },
        connections: { type: "int", default: 1, description: "Client connections to serve before the verdict" },
        step_timeout: { type: "int", default: 10, description: "Seconds a step may wait for client input" }
      }
    }
  },
  artifacts: [{ name: "outcome", kind: "report", path: "replay-outcome.json", description: "The replay's verdict" }]
})

/** The outcome file a replay service writes (its schema and reader are @testbed/replay's Verdict). */
export type Outcome = Verdict.Verdict

/** One line: "passed (6 steps matched)" or the first failure's message. */
export const describe = (outcome: Outcome): string =>
  outcome.passed
    ? `replay passed (${outcome.summary.completed} connection(s), ${outcome.summary.stepsMatched} step(s) matched)`
    : `replay failed: ${outcome.failures.map((failure) => failure.message).join("; ")}`

/** The outcome a replay left in `file`, or a reason it is not there. */
export const readOutcome = Effect.fn("Replay.readOutcome")(function* (file: string) {
  const replay = yield* Effect.result(load)
  if (replay._tag === "Failure") return replay.failure.message
  return yield* replay.success.Verdict.read(file)
})

/** Loads a script with its blobs (`blobs/` beside it); only the built-in actions are available. */
export const loadScript = Effect.fn("Replay.loadScript")(function* (file: string, name?: string) {
  const path = yield* Path.Path
  const { Action, BlobStore, ScriptLoader: Loader } = yield* load
  const loaded: ScriptLoader.LoadedScript = yield* Loader.load({ file, name }).pipe(
    Effect.provide(
      Layer.merge(
        BlobStore.BlobStore.layer({ dir: path.join(path.dirname(file), "blobs") }),
        Action.ActionRegistry.layerEmpty
      )
    )
  )
  return loaded
})
