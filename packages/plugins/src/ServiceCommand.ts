/**
 * Turns a plugin's command template and a service's parameters into a structured command: parameters are
 * checked against their declared types, each program/argument/env/stdin template is rendered strictly by
 * @testbed/commands' `Template` (nunjucks; an undefined name is an error; `shquote`), and no shell is involved.
 */
import { type Command, Template } from "@testbed/commands"
import { Effect, Runtime, Schema } from "effect"
import { type CommandTemplate, type ParameterSpec, ParameterValue } from "./ServicePlugin.ts"
import { ExitCode } from "@testbed/events"

export class TemplateFailed extends Schema.TaggedError<TemplateFailed>()("TemplateFailed", {
  template: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return this.reason
  }
}

/** Why one parameter value does not fit its declaration, or undefined when it does. */
export const checkParameter = (spec: ParameterSpec, value: unknown): string | undefined => {
  switch (spec.type) {
    case "string":
    case "path":
    case "host":
      return typeof value === "string" ? undefined : `expected a ${spec.type} (string), got ${JSON.stringify(value)}`
    case "int":
      return Number.isInteger(value) ? undefined : `expected an integer, got ${JSON.stringify(value)}`
    case "port":
      return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65535
        ? undefined
        : `expected a port (0-65535), got ${JSON.stringify(value)}`
    case "boolean":
      return typeof value === "boolean" ? undefined : `expected a boolean, got ${JSON.stringify(value)}`
    case "list":
      return Array.isArray(value) && value.every((item) => typeof item === "string")
        ? undefined
        : `expected a list of strings, got ${JSON.stringify(value)}`
  }
}

/**
 * Checks user parameters against declarations: unknown names, wrong types, required ones missing.
 * Returns every problem as `[parameterName, reason]`.
 */
export const checkParameters = (
  declared: Readonly<Record<string, ParameterSpec>>,
  given: Readonly<Record<string, unknown>>
): ReadonlyArray<readonly [string, string]> => {
  const problems: Array<readonly [string, string]> = []
  for (const [name, value] of Object.entries(given)) {
    const spec = declared[name]
    if (spec === undefined) {
      const known = Object.keys(declared)
      problems.push([name, `unknown parameter (known: ${known.length > 0 ? known.join(", ") : "none"})`])
      continue
    }
    const reason = checkParameter(spec, value)
    if (reason !== undefined) problems.push([name, reason])
  }
  for (const [name, spec] of Object.entries(declared)) {
    if (spec.required === true && spec.default === undefined && !(name in given)) {
      problems.push([name, "required parameter missing"])
    }
  }
  return problems
}

/** Declared defaults overlaid with the given values. */
export const resolveParameters = (
  declared: Readonly<Record<string, ParameterSpec>>,
  given: Readonly<Record<string, ParameterValue>>
): Record<string, ParameterValue> => {
  const out: Record<string, ParameterValue> = {}
  for (const [name, spec] of Object.entries(declared)) if (spec.default !== undefined) out[name] = spec.default
  return { ...out, ...given }
}

/** The variables a template sees: flat names, and `<service>.<field>` names grouped as `{ service: { field } }`. */
export const Variables = Schema.Record(
  Schema.String,
  Schema.Union([ParameterValue, Schema.Record(Schema.String, ParameterValue)])
)
export type Variables = typeof Variables.Type

/**
 * Nests dotted names (`server.port` → `server: { port }`) so nunjucks' `{{ server.port }}` finds them. A flat
 * variable of the same name as a service wins (a service named `host` is reached as `{{ host }}` only).
 */
export const toContext = (variables: Readonly<Record<string, ParameterValue>>): Variables => {
  const context: Record<string, Variables[string]> = {}
  for (const [name, value] of Object.entries(variables)) if (!name.includes(".")) context[name] = value
  for (const [name, value] of Object.entries(variables)) {
    const dot = name.indexOf(".")
    if (dot < 0) continue
    const group = name.slice(0, dot)
    const existing = context[group]
    if (existing !== undefined && (typeof existing !== "object" || Array.isArray(existing))) continue
    context[group] = { ...existing, [name.slice(dot + 1)]: value }
  }
  return context
}

const reasonOf = (text: string, error: Template.TemplateError): string =>
  error._tag === "TemplateRenderFailed" && error.variable !== undefined
    ? `unknown variable "${error.variable}" in "${text}"`
    : error.variable !== undefined
      ? `variable "${error.variable}" in "${text}": ${error.reason}`
      : `${error.reason} in "${text}"`

const renderWith = (text: string, context: Variables): Effect.Effect<string, TemplateFailed> =>
  Template.make(text, { name: text, parameters: Variables }).pipe(
    Effect.flatMap((template) => Template.render(template, context)),
    Effect.mapError((error) => new TemplateFailed({ template: text, reason: reasonOf(text, error) }))
  )

/** When an argument is exactly `{{ name }}`, the name (so a list can expand to several arguments). */
const soleVariable = (template: string): string | undefined =>
  /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/.exec(template)?.[1]

/** Renders a command template into a `Command` (program + argv, never a shell string). */
export const renderCommand = Effect.fn("ServiceCommand.renderCommand")(function* (
  template: CommandTemplate,
  variables: Readonly<Record<string, ParameterValue>>,
  options: { readonly id?: string; readonly cwd?: string } = {}
): Effect.fn.Return<Command.Command, TemplateFailed> {
  const context = toContext(variables)
  const render = (text: string) => renderWith(text, context)
  const args: Array<string> = []
  for (const arg of template.args ?? []) {
    const sole = soleVariable(arg)
    const value = sole === undefined ? undefined : variables[sole]
    // A list parameter given as a whole argument becomes one argument per item, each itself a template.
    if (Array.isArray(value)) for (const item of value) args.push(yield* render(item))
    else args.push(yield* render(arg))
  }
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(template.env ?? {})) env[key] = yield* render(value)
  return {
    program: yield* render(template.program),
    args,
    ...(template.env === undefined ? {} : { env }),
    ...(template.stdin === undefined ? {} : { stdin: yield* render(template.stdin) }),
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd })
  } satisfies Command.Command
})

/** Renders one template string. */
export const renderText = (
  template: string,
  variables: Readonly<Record<string, ParameterValue>>
): Effect.Effect<string, TemplateFailed> => renderWith(template, toContext(variables))
