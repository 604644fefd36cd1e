/**
 * The `testbed stage` group: its shared flags (catalog, state directory, instance), the Stages service built from
 * them, and how its errors become exit codes. The subcommands live in stage.ts, stageShell.ts and stageLab.ts.
 */
import { EventBus } from "@testbed/events"
import { Docker, Stages } from "@testbed/stages"
import { Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"

export const stage = Command.make("stage").pipe(
  Command.withSharedFlags({
    catalog: Flag.String("catalog").pipe(
      Flag.withDescription("Directory of stages (<name>/stage.yaml)"),
      Flag.withDefault("stages")
    ),
    stateDir: Flag.String("state-dir").pipe(
      Flag.withDescription("Where the current stage is recorded"),
      Flag.withDefault(".testbed")
    ),
    instance: Flag.String("instance").pipe(
      Flag.withDescription(
        "One copy of a stage among several (e.g. one per student): its own names, bridges, addresses"
      ),
      Flag.optional
    )
  }),
  Command.withDescription(
    "Bring named Docker topologies up and down, open shells in their nodes, impair their links, grade them"
  )
)

/** Fails with `ExitWith`; `bin.ts` prints the message once (a shell that exited 1 is not a testbed error). */
export const exit = (code: number, message?: string) =>
  Effect.fail(new ExitWith(message === undefined ? { code } : { code, message }))

/**
 * Exit codes: 2 for a definition, name, flag or setting the user must fix, 3 when the engine is not reachable,
 * 75 (EX_TEMPFAIL) when another up/down/prune of the project held its lock too long, else 1.
 */
const toFix = new Set([
  "InvalidStageName",
  "StageNotFound",
  "StageInvalid",
  "ComposeUnsupported",
  "ImpairmentUnsupported",
  "TargetNotFound",
  "InstanceInvalid"
])
const exitCodeOf = (tag: string): number =>
  toFix.has(tag) ? 2 : tag === "DockerUnavailable" ? 3 : tag === "StageBusy" ? 75 : 1

/** Runs `f` with the Stages service of the flags' project and instance; its errors become exit codes. */
export const withStages = <A, E extends { readonly _tag: string; readonly message: string }>(
  f: (stages: Stages.Stages["Service"]) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const { catalog, stateDir, instance } = yield* stage
    const options = {
      catalog,
      stateDir,
      ...Option.match(instance, { onNone: () => ({}), onSome: (i) => ({ instance: i }) })
    }
    return yield* Stages.Stages.use(f).pipe(
      Effect.provide(
        Stages.Stages.layer(options).pipe(Layer.provide(Layer.mergeAll(Docker.Docker.layer, EventBus.EventBus.layer)))
      )
    )
  }).pipe(
    Effect.catch((error: { readonly _tag: string; readonly message: string }) =>
      error._tag === "ExitWith" ? Effect.fail(error) : exit(exitCodeOf(error._tag), error.message)
    )
  )

/** A flag or argument that did not decode: exit 2 naming it. */
export const badFlag = (flag: string) => (error: { readonly message: string }) => exit(2, `${flag}: ${error.message}`)
