/**
 * `testbed report OUTPUT_DIR [--format json,md,junit,ctrf,html]`: re-renders the reports of a recorded run from
 * the event log in its output directory, without running anything.
 */
import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ReportWriter } from "@testbed/reports"

export const report = Command.make(
  "report",
  {
    outputDir: Argument.Directory("OUTPUT_DIR", { mustExist: true }).pipe(
      Argument.withDescription(`The output directory of a run, holding its ${ReportWriter.eventLogName}`)
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
  Effect.fn(function* ({ formats, generatedAt, outputDir }) {
    const written = yield* ReportWriter.renderDirectory(outputDir, {
      ...(Option.isSome(formats) ? { formats: formats.value } : {}),
      ...(Option.isSome(generatedAt) ? { generatedAt: generatedAt.value } : {})
    })
    for (const file of written) yield* Console.log(file)
  })
).pipe(
  Command.withDescription(
    "Render the reports of a recorded run (JSON, Markdown, JUnit XML, CTRF, HTML) from its event log"
  ),
  Command.withExamples([
    { command: "testbed report outputs/quic-interop", description: "Write all five reports beside events.jsonl" },
    { command: "testbed report outputs/quic-interop --format junit,html", description: "Only JUnit XML and HTML" }
  ])
)
