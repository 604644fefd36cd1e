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
 * Runs `f` with the Stages service of the flags' project and instance. Its errors carry their exit codes (2 for a
 * definition, name or setting to fix, 3 for the engine and the host, 75 for a busy project lock): `bin.ts` says
 * them in one line.
 */
export const withStages = Effect.fn("StageGroup.withStages")(function* <A, E>(
  f: (stages: Stages.Stages["Service"]) => Effect.Effect<A, E>
) {
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
})

/** A flag or argument that did not decode: exit 2 naming it. */
export const badFlag = (flag: string) => (error: { readonly message: string }) => exit(2, `${flag}: ${error.message}`)
