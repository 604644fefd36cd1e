// A service's lifecycle commands as the experiment file declares them (PANTHER's prepare, pre-run, run, post-run),
// checked and planned: `run` replaces the plugin's command; the others are run by internal/lifecycle.ts.
import type { ServicePlugin } from "@testbed/plugins"
import type { Hook, ServiceConfig } from "../ExperimentConfig.ts"

export type HookName = "prepare" | "pre_run" | "post_run"
export const hookNames: ReadonlyArray<HookName> = ["prepare", "pre_run", "post_run"]
export type Hooks = Partial<Record<HookName, Hook>>

/** The command of a hook, as a plugin's command template: argv, or `sh -c` for a shell script. */
export const commandOf = (hook: Hook): ServicePlugin.RoleSpec["command"] => ({
  ...(hook.shell !== undefined
    ? { program: "sh", args: ["-c", hook.shell] }
    : { program: hook.command?.[0] ?? "", args: hook.command?.slice(1) ?? [] }),
  ...(hook.env === undefined ? {} : { env: hook.env })
})

/** The hooks a service declares besides `run`, or undefined when it has none. */
export const hooksOf = (service: ServiceConfig): Hooks | undefined => {
  const hooks: Hooks = {}
  for (const name of hookNames) {
    const hook = service[name]
    if (hook !== undefined) hooks[name] = hook
  }
  return Object.keys(hooks).length === 0 ? undefined : hooks
}

/** The role's spec with `run` as its command (the plugin's parameters and readiness stay). */
export const withRun = (spec: ServicePlugin.RoleSpec, run: Hook | undefined): ServicePlugin.RoleSpec =>
  run === undefined ? spec : { ...spec, command: commandOf(run) }

/** Each hook needs exactly one of `command` (non-empty) and `shell`: [hook, reason] of those that do not. */
export const problems = (service: ServiceConfig): ReadonlyArray<readonly [string, string]> =>
  [...hookNames, "run" as const].flatMap((name): ReadonlyArray<readonly [string, string]> => {
    const hook = service[name]
    if (hook === undefined) return []
    const given = (hook.command === undefined ? 0 : 1) + (hook.shell === undefined ? 0 : 1)
    if (given !== 1) return [[name, "give exactly one of command and shell"]]
    if (hook.command !== undefined && hook.command.length === 0) return [[name, "command is empty"]]
    return []
  })
