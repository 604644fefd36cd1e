/**
 * `testbed schema experiment|stage|plugin`: prints the JSON Schema of that kind of file (generated from the
 * Schemas that decode it) for editors: save it and point a `# yaml-language-server: $schema=…` modeline at it.
 */
import { FileSchemas } from "@testbed/experiments"
import { Console, Effect } from "effect"
import { Argument, Command } from "effect/cli"

export const schema = Command.make(
  "schema",
  {
    kind: Argument.Literals("KIND", FileSchemas.kinds).pipe(
      Argument.withDescription(`The kind of file: ${FileSchemas.kinds.join(", ")}`)
    )
  },
  Effect.fn(function* ({ kind }) {
    yield* Console.log(FileSchemas.jsonSchemaText(kind).trimEnd())
  })
).pipe(
  Command.withDescription("Print the JSON Schema of experiment, stage or plugin files, for editor completion"),
  Command.withExamples([
    {
      command: "testbed schema experiment > experiment.schema.json",
      description: "Then start the experiment file with: # yaml-language-server: $schema=experiment.schema.json"
    }
  ])
)
