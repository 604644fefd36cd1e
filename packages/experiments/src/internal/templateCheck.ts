// Template variables checked before anything runs: every `{{ name }}` in a command, a parameter, a path must be one
// the run will give at that place, or `--dry-run` reports it with its YAML path (instead of a test failing later).
import { Template } from "@testbed/commands"
import type { ServicePlugin } from "@testbed/plugins"
import type { ServicePlan } from "../Plan.ts"
import { Result } from "effect"

/** The variables every template of an attempt sees (TestCase sets them; `cert`, `key`, `ca` with a certificate). */
export const attemptVariables: ReadonlyArray<string> = [
  "test_dir",
  "run_dir",
  "test",
  "attempt",
  "node",
  "assets",
  "replay_server",
  "experiment_dir"
]

export const certificateVariables: ReadonlyArray<string> = ["cert", "key", "ca"]

/** The variables a service's own templates see on top of the attempt's (services.ts `deployAll`). */
export const serviceVariables = (options: {
  readonly server: boolean
  readonly hasTarget: boolean
}): ReadonlyArray<string> => [
  "host",
  "service",
  "service_dir",
  "implementation",
  "version",
  "role",
  ...(options.server ? ["port"] : []),
  ...(options.hasTarget ? ["target_host", "target_port"] : [])
]

/** What every service of a test adds for all: `<key>.host`, `<key>.dir`, and `<key>.port` for a server. */
export const perService = (key: string, server: boolean): ReadonlyArray<string> => [
  `${key}.host`,
  `${key}.dir`,
  ...(server ? [`${key}.port`] : [])
]

/** One template to check: where it is (for the problem), its text, and the names known there. */
export interface Pending {
  readonly path: string
  readonly source: string
  readonly known: ReadonlySet<string>
  /** Whose template it is when it is not in the file (a plugin's command). */
  readonly what?: string
}

const isKnown = (known: ReadonlySet<string>, path: ReadonlyArray<string>): boolean => {
  const [first, second] = path
  if (first === undefined) return true
  if (known.has(first)) return true
  if (second !== undefined) return known.has(`${first}.${second}`)
  for (const name of known) if (name.startsWith(`${first}.`)) return true
  return false
}

/** The problem with one template, or undefined; `extra` are names known everywhere (the certificate's). */
export const check = (pending: Pending, extra: ReadonlyArray<string>): string | undefined => {
  const parsed = Template.variables(pending.source)
  if (Result.isFailure(parsed)) return `not a valid template: ${parsed.failure.reason}`
  const unknown = parsed.success.filter(
    (path) => !isKnown(pending.known, path) && !(path.length === 1 && extra.includes(path[0]!))
  )
  if (unknown.length === 0) return undefined
  const names = [...new Set(unknown.map((path) => path.join(".")))]
  const flat = [...pending.known].filter((name) => !name.includes(".")).sort()
  return `unknown variable${names.length > 1 ? "s" : ""} ${names.map((name) => `"${name}"`).join(", ")} in ${JSON.stringify(pending.source)} (known here: ${flat.join(", ")}, and <service>.host/.dir/.port)`
}

/** The templates of a command: program, arguments, env values and stdin, each with its own path. */
export const commandTemplates = (
  path: string,
  command: ServicePlugin.CommandTemplate
): ReadonlyArray<readonly [string, string]> => [
  [`${path}.program`, command.program],
  ...(command.args ?? []).map((arg, index) => [`${path}.args[${index}]`, arg] as const),
  ...Object.entries(command.env ?? {}).map(([name, value]) => [`${path}.env.${name}`, value] as const),
  ...(command.stdin === undefined ? [] : [[`${path}.stdin`, command.stdin] as const])
]

/**
 * A service's templates (its parameters, its plugin's command, its readiness command) and the names its own
 * templates — and the steps run in its place — see: the test's, the service's, and its declared parameters.
 */
export const ofService = (
  path: string,
  service: ServicePlan,
  testKnown: ReadonlySet<string>
): { readonly pending: ReadonlyArray<Pending>; readonly known: ReadonlySet<string> } => {
  const base = new Set([
    ...testKnown,
    ...serviceVariables({ server: service.role === "server", hasTarget: service.target !== undefined })
  ])
  // Every declared parameter (a required one that is missing is reported as missing, not as unknown).
  const known = new Set([...base, ...Object.keys(service.parameters), ...Object.keys(service.spec.parameters ?? {})])
  const pending: Array<Pending> = []
  // String parameters are rendered first, against the service's variables without the parameters; the items
  // of a list parameter are rendered with the command, with everything.
  for (const [name, value] of Object.entries(service.parameters)) {
    if (typeof value === "string") pending.push({ path: `${path}.parameters.${name}`, source: value, known: base })
    else if (Array.isArray(value))
      for (const [index, item] of value.entries())
        pending.push({ path: `${path}.parameters.${name}[${index}]`, source: item, known })
  }
  const what = `${service.plugin.name} ${service.role} command`
  for (const [, source] of commandTemplates("", service.spec.command))
    pending.push({ path: `${path}.implementation`, source, known, what })
  if (service.readiness.kind === "command") {
    for (const [at, source] of commandTemplates(`${path}.readiness.command`, service.readiness.command))
      pending.push({ path: at, source, known })
  }
  return { pending, known }
}
