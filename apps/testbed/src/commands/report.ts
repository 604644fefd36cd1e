/**
 * `testbed report`: re-render a recorded run's reports from its event log (`testbed report OUTPUT_DIR`), compare
 * two runs (`--compare RUN_A RUN_B`), chart an experiment's runs over time (`--history DIR`) or merge shards
 * (`--merge OUT RUN…`). Decodes the command line and calls `ReportJob.runArguments`; prints the files written.
 */
import { Console, Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ReportJob, ReportWriter } from "@testbed/reports"

export const report = Command.make(
  "report",
  {
    paths: Argument.String("RUN").pipe(
      Argument.withDescription(
        `A run's output directory (holding ${ReportWriter.eventLogName}); with --compare the current run; with --merge the runs to merge`
      ),
      Argument.variadic()
    ),
    compare: Flag.String("compare").pipe(
      Flag.withDescription("Compare the baseline run given here with the run after it: --compare RUN_A RUN_B"),
      Flag.optional
    ),
    history: Flag.String("history").pipe(
      Flag.withDescription("Chart the runs of one experiment in this directory over time: --history DIR"),
      Flag.optional
    ),
    merge: Flag.String("merge").pipe(
      Flag.withDescription("Merge the shards of one experiment into this directory: --merge OUT RUN…"),
      Flag.optional
    ),
    output: Flag.String("output").pipe(
      Flag.withDescription("Where --compare and --history write (default: the current run, the history directory)"),
      Flag.optional
    ),
    experiment: Flag.String("experiment").pipe(
      Flag.withDescription("With --history, the experiment to chart when the directory holds several"),
      Flag.optional
    ),
    formats: Flag.String("format").pipe(
      Flag.withSchema(ReportWriter.FormatList),
      Flag.withDescription(`Formats to write, comma-separated: ${ReportWriter.formats.join(",")} (default: all)`),
      Flag.optional
    ),
    generatedAt: Flag.String("generated-at").pipe(
      Flag.withDescription("ISO time to record as generated_at (default: now); fix it for byte-identical reports"),
      Flag.optional
    )
  },
  Effect.fn(function* (args) {
    for (const file of yield* ReportJob.runArguments(args)) yield* Console.log(file)
  })
).pipe(
  Command.withDescription(
    "Render a recorded run's reports (JSON, Markdown, JUnit XML, CTRF, HTML), compare runs, chart their history, merge shards"
  ),
  Command.withExamples([
    { command: "testbed report outputs/quic-interop", description: "Write all five reports beside events.jsonl" },
    { command: "testbed report outputs/quic-interop --format junit,html", description: "Only JUnit XML and HTML" },
    {
      command: "testbed report --compare outputs/nightly-0313 outputs/nightly-0314",
      description: "What changed: comparison.md and comparison.html in the second run"
    },
    { command: "testbed report --history outputs", description: "history.html: pass rates over the runs in outputs/" },
    { command: "testbed report --merge shards shards/*", description: "One set of reports for all shards" }
  ])
)
