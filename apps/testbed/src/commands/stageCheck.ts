/**
 * `testbed stage check [STAGE]` (graded checks into an event log and reports; a class table over instances) and
 * `testbed stage graph STAGE` (mermaid, dot or svg).
 */
import { ReportWriter } from "@testbed/reports"
import { Graph } from "@testbed/stages"
import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { exit, stage, withStages } from "./stageGroup.ts"
import { show } from "./stageImpair.ts"

export const check = Command.make(
  "check",
  {
    ref: Argument.String("STAGE").pipe(
      Argument.withDescription("Check every instance of this stage that is up"),
      Argument.optional
    ),
    checks: Flag.File("checks").pipe(
      Flag.withDescription("A checks file to use instead of the stage's checks"),
      Flag.optional
    ),
    output: Flag.String("output").pipe(Flag.withDescription("Where the event log and reports go"), Flag.optional),
    formats: Flag.String("format").pipe(
      Flag.withSchema(ReportWriter.FormatList),
      Flag.withDescription("Report formats (default: all)"),
      Flag.optional
    )
  },
  Effect.fn(function* ({ checks, formats, output, ref }) {
    const { instance, stateDir } = yield* stage
    const name = Option.getOrUndefined(ref)
    const dir = Option.getOrElse(
      output,
      () => `${stateDir}/checks/${name ?? "stage"}-${new Date().toISOString().replaceAll(":", "")}`
    )
    const run = yield* withStages((stages) =>
      stages.check({
        output: dir,
        stage: name,
        instances: Option.isSome(instance) ? [instance.value] : undefined,
        checksFile: Option.getOrUndefined(checks)
      })
    )
    for (const o of run.outcomes) yield* Console.log(show(o))
    const written = yield* ReportWriter.renderDirectory(
      run.output,
      Option.isSome(formats) ? { formats: formats.value } : {}
    )
    for (const file of [...written, ...(run.classTable ? [run.classTable.csv, run.classTable.html] : [])])
      yield* Console.log(file)
    const failed = run.outcomes.filter((o) => !o.passed).length
    if (failed > 0) return yield* exit(1, `${failed} of ${run.outcomes.length} checks failed`)
  })
).pipe(Command.withDescription("Grade the current stage (or every instance of STAGE) with its checks; writes reports"))

export const graph = Command.make(
  "graph",
  {
    ref: Argument.String("STAGE"),
    format: Flag.Literals("format", Graph.Format).pipe(Flag.withDefault("mermaid" as const))
  },
  Effect.fn(function* ({ format, ref }) {
    const topology = yield* withStages((stages) => stages.graph(ref))
    yield* Console.log(Graph.render(topology, format).trimEnd())
  })
).pipe(Command.withDescription("Draw a stage: nodes, networks, links, addresses, impairments (mermaid, dot or svg)"))
