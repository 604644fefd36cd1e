/**
 * Labels say what a runner can run (`docker`, `openssl`, …) and what a test needs. A runner serves two shard
 * groups: `"default"` (every runner, where the engine keeps its own singletons such as the health check, and where
 * tests that need no label go) and the group of its exact label set, its *profile* (`docker+openssl`). A test that
 * needs labels goes to the profile group of a live runner whose labels include them.
 */
import { createHash } from "node:crypto"
import type { Plan } from "@testbed/experiments"
import type { PluginRegistry } from "@testbed/plugins"

/** Labels are names: lower case letters, digits, `.`, `_`, `-` (they become part of shard ids). */
export const labelPattern = /^[a-z0-9][a-z0-9._-]{0,39}$/

/** Sorted, without duplicates. */
export const normalize = (labels: Iterable<string>): ReadonlyArray<string> => [...new Set(labels)].sort()

/**
 * The profile group of a label set: the sorted labels joined by `+`, `"default"` for none. A shard id is
 * `<group>:<n>` in a `varchar(50)`, so a name over 40 characters becomes `p-` and 16 hex digits of its hash.
 */
export const groupOf = (labels: Iterable<string>): string => {
  const sorted = normalize(labels)
  if (sorted.length === 0) return "default"
  const name = sorted.join("+")
  return name.length <= 40 ? name : `p-${createHash("sha256").update(name).digest("hex").slice(0, 16)}`
}

/** The groups a runner with these labels serves. */
export const groupsOf = (labels: Iterable<string>): ReadonlyArray<string> => [...new Set(["default", groupOf(labels)])]

/** Environments that need no label: every runner has them. */
const everywhere = new Set(["localhost", "local", "fake"])

/**
 * What a planned test needs: its environment's name unless every runner has it (`docker`), and the name of
 * every service plugin that declares programs (`openssl`: the runner has the programs on PATH), plus `extra`.
 */
export const required = (test: Plan.TestPlan, extra: Iterable<string> = []): ReadonlyArray<string> =>
  normalize([
    ...(everywhere.has(test.environment) ? [] : [test.environment]),
    ...test.services
      .filter((service) => (service.plugin.programs ?? []).length > 0)
      .map((service) => service.plugin.name),
    ...extra
  ])

/** The labels a runner's plugins give it: each service plugin whose programs are all on PATH (`has`). */
export const ofPlugins = (
  registry: PluginRegistry.PluginRegistry["Service"],
  has: (program: string) => boolean
): ReadonlyArray<string> =>
  registry.services
    .filter(({ plugin }) => (plugin.programs ?? []).length > 0 && (plugin.programs ?? []).every(has))
    .map(({ plugin }) => plugin.name)

/** The labels of `required` that no label set in `offered` has, for "no runner has labels: …". */
export const missing = (needed: ReadonlyArray<string>, offered: ReadonlyArray<ReadonlyArray<string>>) => {
  const all = new Set(offered.flat())
  const absent = needed.filter((label) => !all.has(label))
  // Every label exists somewhere, but no single runner has them all.
  return absent.length > 0 ? absent : needed
}

/**
 * What to do about missing labels that name the experiment's own plugins (`own`: from its plugin directories, sent
 * to runners in the bundle): a runner detects only the plugins it loaded at start, so it offers such a plugin only
 * when started with `--plugins` (a copy of the plugin's directory) or `--labels NAME`. Empty when none is missing.
 */
export const ownPluginHint = (
  absent: ReadonlyArray<string>,
  own: ReadonlyArray<{ readonly name: string; readonly programs: ReadonlyArray<string> }>
): string => {
  const missingOwn = own.filter(
    (plugin, i) => absent.includes(plugin.name) && own.findIndex((other) => other.name === plugin.name) === i
  )
  if (missingOwn.length === 0) return ""
  const names = missingOwn.map((plugin) => plugin.name).join(", ")
  const programs = normalize(missingOwn.flatMap((plugin) => plugin.programs)).join(", ")
  return (
    ` (${names}: the experiment's own plugin${missingOwn.length === 1 ? "" : "s"}; a runner offers one when started` +
    ` with --plugins DIR holding it, or --labels ${missingOwn[0]!.name}, on a host with ${programs})`
  )
}

/** Whether a runner with `labels` can run a test that needs `needed`. */
export const satisfies = (labels: ReadonlyArray<string>, needed: ReadonlyArray<string>) =>
  needed.every((label) => labels.includes(label))
