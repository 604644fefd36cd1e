/**
 * Turns a plugin's command template and a service's parameters into a structured command: parameters are
 * checked against their declared types, templates are rendered strictly, and no shell is involved.
 */
import type { Command } from "@testbed/commands"
import { Schema } from "effect"
import { renderString, soleVariable } from "./internal/template.ts"
import type { CommandTemplate, ParameterSpec, ParameterValue } from "./ServicePlugin.ts"

export class TemplateFailed extends Schema.TaggedError<TemplateFailed>()("TemplateFailed", {
  template: Schema.String,
  reason: Schema.String
}) {
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

/** Renders a command template into a `Command` (program + argv, never a shell string). */
export const renderCommand = (
  template: CommandTemplate,
  variables: Readonly<Record<string, ParameterValue>>,
  options: { readonly id?: string; readonly cwd?: string } = {}
): Command.Command | TemplateFailed => {
  let failure: TemplateFailed | undefined
  const render = (text: string): string => {
    const result = renderString(text, variables)
    if (result.ok) return result.value
    failure ??= new TemplateFailed({ template: text, reason: result.reason })
    return ""
  }
  const args: Array<string> = []
  for (const arg of template.args ?? []) {
    const sole = soleVariable(arg)
    const value = sole === undefined ? undefined : variables[sole]
    if (Array.isArray(value)) args.push(...value.map(render))
    else args.push(render(arg))
  }
  const env =
    template.env === undefined
      ? undefined
      : Object.fromEntries(Object.entries(template.env).map(([key, value]) => [key, render(value)]))
  const command: Command.Command = {
    program: render(template.program),
    args,
    ...(env === undefined ? {} : { env }),
    ...(template.stdin === undefined ? {} : { stdin: render(template.stdin) }),
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd })
  }
  return failure ?? command
}

/** Renders one template string. */
export const renderText = (
  template: string,
  variables: Readonly<Record<string, ParameterValue>>
): string | TemplateFailed => {
  const result = renderString(template, variables)
  return result.ok ? result.value : new TemplateFailed({ template, reason: result.reason })
}
