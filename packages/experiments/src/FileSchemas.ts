/**
 * JSON Schemas of the files a user writes — experiments, stages, service plugin definitions — generated from
 * the Effect Schemas that decode them, so an editor (yaml-language-server, VS Code) completes and checks them.
 * Draft-07, the dialect editors support best. The decoder stays the authority: it also checks what a JSON
 * Schema cannot (cross references, plugins, regular expressions).
 */
import * as ServicePlugin from "@testbed/plugins/ServicePlugin"
import * as Stage from "@testbed/stages/Stage"
import { JsonSchema, Schema } from "effect"
import { ExperimentConfig } from "./ExperimentConfig.ts"

export const kinds = ["experiment", "stage", "plugin"] as const
export type Kind = (typeof kinds)[number]

const sources: Record<Kind, { readonly schema: Schema.Top; readonly title: string }> = {
  experiment: { schema: ExperimentConfig, title: "testbed experiment" },
  stage: { schema: Stage.Stage, title: "testbed stage" },
  plugin: { schema: ServicePlugin.ServicePlugin, title: "testbed service plugin" }
}

/**
 * The JSON Schema of one kind of file, as a JSON value. Unknown keys are errors, as when the file is decoded
 * (a misspelt key is flagged in the editor too).
 */
export const jsonSchema = (kind: Kind): Record<string, unknown> => {
  const { schema, title } = sources[kind]
  const document = JsonSchema.toDocumentDraft07(Schema.toJsonSchemaDocument(schema, { onExcessProperty: "error" }))
  const definitions = Object.keys(document.definitions).length === 0 ? {} : { definitions: document.definitions }
  return {
    $schema: JsonSchema.META_SCHEMA_URI_DRAFT_07,
    title,
    ...document.schema,
    ...definitions
  }
}

/** The schema as the text `testbed schema KIND` prints and `schemas/KIND.schema.json` holds. */
export const jsonSchemaText = (kind: Kind): string => `${JSON.stringify(jsonSchema(kind), null, 2)}\n`
