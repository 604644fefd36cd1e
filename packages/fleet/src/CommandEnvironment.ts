/**
 * The environment an agent's commands run with. Whoever can make an agent run a command can read that
 * command's environment, so testbed's own secrets never reach it: the variables that hold them by name, and any
 * variable whose value holds a secret the agent knows (the signing secret, the broker password). An allowlist,
 * when given, narrows what passes further.
 */
import { Redacted } from "effect"

/** Variables testbed reads secrets from: never passed to a command, even when allowlisted. */
export const secretVariables: ReadonlyArray<string> = ["TESTBED_FLEET_SECRET", "MQTT_PASSWORD"]

export interface EnvironmentPolicy {
  /**
   * Names of the variables passed to commands (`*` matches any run of characters: `LC_*`); absent: every
   * variable but the secrets, as the original agent passed its whole environment.
   */
  readonly pass?: ReadonlyArray<string> | undefined
  /** Values the agent knows to be secret: a variable holding one is dropped whatever its name. */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
}

const globToRegex = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`
  )

// A short secret would match inside unrelated values (a PATH, a locale): below this length only an exact copy counts.
const minimumInnerMatch = 8

const holdsSecret = (value: string, secrets: ReadonlyArray<string>): boolean =>
  secrets.some((secret) => value === secret || (secret.length >= minimumInnerMatch && value.includes(secret)))

/** The variables of `base` a command may see under `policy`. */
export const forCommands = (
  base: Readonly<Record<string, string | undefined>>,
  policy: EnvironmentPolicy = {}
): Record<string, string> => {
  const allowed = policy.pass?.map(globToRegex)
  const secrets = (policy.secrets ?? []).map(Redacted.value).filter((s) => s !== "")
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined || secretVariables.includes(name)) continue
    if (allowed !== undefined && !allowed.some((re) => re.test(name))) continue
    if (holdsSecret(value, secrets)) continue
    out[name] = value
  }
  return out
}
