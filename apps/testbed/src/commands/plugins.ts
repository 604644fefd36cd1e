/**
 * `testbed plugins list [--plugins DIR] [--json]`: the service and environment plugins available, where each comes from,
 * and which programs a service plugin needs that are missing here.
 */
import { Experiment } from "@testbed/experiments"
import { PluginRegistry, Programs } from "@testbed/plugins"
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"

const list = Command.make(
  "list",
  {
    plugins: Flag.String("plugins").pipe(
      Flag.withDescription("A directory of plugin modules to load (repeatable)"),
      Flag.atLeast(0)
    ),
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print one JSON document (services with missing programs, environments)"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function* ({ plugins, json }) {
    const registry = yield* PluginRegistry.load({ directories: plugins, builtins: Experiment.builtins })
    const services = registry.services.map(({ plugin, source }) => ({
      plugin,
      source,
      missing: Programs.missing(plugin.programs ?? [])
    }))
    if (json) {
      // One JSON document on stdout, for scripts: `testbed plugins list --json | jq …`.
      return yield* Console.log(
        JSON.stringify({
          services: services.map(({ plugin, source, missing }) => ({
            name: plugin.name,
            type: plugin.type,
            roles: Object.keys(plugin.roles),
            protocols: plugin.protocols,
            versions: plugin.versions,
            description: plugin.description ?? null,
            source,
            programs: plugin.programs ?? [],
            missing,
            docker: plugin.docker ?? null
          })),
          environments: registry.environments.map(({ plugin, source }) => ({
            name: plugin.name,
            description: plugin.description,
            source
          }))
        })
      )
    }
    yield* Console.log("Service plugins:")
    for (const { plugin, source, missing } of services) {
      const roles = Object.keys(plugin.roles).join("+")
      yield* Console.log(
        `  ${plugin.name.padEnd(12)} ${plugin.type.padEnd(6)} ${roles.padEnd(13)} ${plugin.protocols.join(",").padEnd(9)} ${source}${missing.length > 0 ? `  (missing: ${missing.join(", ")})` : ""}`
      )
      if (plugin.description !== undefined) yield* Console.log(`               ${plugin.description}`)
    }
    yield* Console.log("Environment plugins:")
    for (const { plugin, source } of registry.environments) {
      yield* Console.log(`  ${plugin.name.padEnd(12)} ${source}  ${plugin.description}`)
    }
  })
).pipe(Command.withDescription("List the service and environment plugins, with their roles and sources"))

export const plugins = Command.make("plugins").pipe(
  Command.withDescription("Service and environment plugins"),
  Command.withSubcommands([list])
)
