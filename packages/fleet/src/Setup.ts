/**
 * Turns what a user gives (config file, flags, environment) into a connection and a signing policy, the
 * same way for `fleet agent`, `operator` and `send`. Secrets come from files or the environment, never
 * argv, and stay `Redacted` from here on.
 */
import { type Duration, Config as EffectConfig, Effect, FileSystem, Option, Redacted } from "effect"
import type * as Agent from "./Agent.ts"
import * as Config from "./Config.ts"
import type * as MqttConnection from "./MqttConnection.ts"
import * as Security from "./Security.ts"

export interface Overrides {
  readonly config?: string | undefined
  /** Host or URL; wins over the file and `MQTT_BROKER`. */
  readonly broker?: string | undefined
  readonly username?: string | undefined
  readonly passwordFile?: string | undefined
  readonly caFile?: string | undefined
  readonly certFile?: string | undefined
  readonly keyFile?: string | undefined
  /** Accept a broker certificate that does not verify (test brokers only). */
  readonly insecure?: boolean | undefined
  readonly secretFile?: string | undefined
  readonly compat?: boolean | undefined
}

export interface Resolved {
  readonly config: Config.FleetConfig
  readonly connection: Omit<MqttConnection.ConnectOptions, "clientId" | "will">
  readonly signing: Security.Signing
}

const readSecret = (fs: FileSystem.FileSystem, path: string, what: string) =>
  fs.readFileString(path).pipe(
    Effect.mapError((e) => new Config.ConfigInvalid({ path, reason: `cannot read the ${what}: ${e.message}` })),
    Effect.flatMap((text) =>
      text.trim() === ""
        ? Effect.fail(new Config.ConfigInvalid({ path, reason: `the ${what} is empty` }))
        : Effect.succeed(Redacted.make(text.trim()))
    )
  )

// A variable that is set but cannot be read as asked (a provider's failure) is the user's to fix: named, typed.
const fromEnv = <A>(
  name: string,
  config: EffectConfig.Config<A>
): Effect.Effect<Option.Option<A>, Config.ConfigInvalid> =>
  EffectConfig.option(config).pipe(
    Effect.mapError(
      (e) => new Config.ConfigInvalid({ path: `environment variable ${name}`, reason: `cannot read it: ${e.message}` })
    )
  )
const env = (name: string) => fromEnv(name, EffectConfig.String(name))
const envSecret = (name: string) => fromEnv(name, EffectConfig.Redacted(name))

export const resolve = Effect.fn("Setup.resolve")(function* (
  overrides: Overrides,
  role: "agent" | "operator" | "commander"
): Effect.fn.Return<Resolved, Config.ConfigInvalid, FileSystem.FileSystem> {
  const fs = yield* FileSystem.FileSystem
  const fromFile = overrides.config === undefined ? yield* Config.defaults : yield* Config.load(overrides.config)
  const config = Config.withEnv(fromFile, {
    MQTT_BROKER: Option.getOrUndefined(yield* env("MQTT_BROKER")),
    CLIENT_ID: Option.getOrUndefined(yield* env("CLIENT_ID"))
  })
  const broker = overrides.broker === undefined ? config.broker : { ...config.broker, broker: overrides.broker }
  const passwordFile = overrides.passwordFile ?? broker.passwordFile
  const password =
    passwordFile !== undefined
      ? Option.some(yield* readSecret(fs, passwordFile, "MQTT password file"))
      : yield* envSecret("MQTT_PASSWORD")
  const caFile = overrides.caFile ?? broker.caFile
  const certFile = overrides.certFile ?? broker.certFile
  const keyFile = overrides.keyFile ?? broker.keyFile
  const url = Config.brokerUrl({ ...config, broker: { ...broker, caFile } })
  const tlsWanted = url.startsWith("mqtts:") || url.startsWith("wss:")
  const username = overrides.username ?? broker.username
  const connection: Resolved["connection"] = {
    url,
    ...(username !== undefined ? { username } : {}),
    ...(Option.isSome(password) ? { password: password.value } : {}),
    ...(tlsWanted
      ? {
          tls: {
            ...(caFile !== undefined ? { caFile } : {}),
            ...(certFile !== undefined ? { certFile } : {}),
            ...(keyFile !== undefined ? { keyFile } : {}),
            rejectUnauthorized: overrides.insecure !== true
          }
        }
      : {})
  }
  const compat = overrides.compat ?? config.security.compat
  const secretFile = overrides.secretFile ?? config.security.secretFile
  const secret =
    secretFile !== undefined
      ? Option.some(yield* readSecret(fs, secretFile, "secret file"))
      : yield* envSecret("TESTBED_FLEET_SECRET")
  const where = overrides.config ?? "(flags)"
  if (Option.isSome(secret) && Redacted.value(secret.value).trim() === "") {
    return yield* new Config.ConfigInvalid({ path: where, reason: "TESTBED_FLEET_SECRET is empty" })
  }
  if (compat && Option.isSome(secret)) {
    return yield* new Config.ConfigInvalid({
      path: where,
      reason: "choose either a shared secret or --compat, not both"
    })
  }
  if (!compat && Option.isNone(secret)) {
    return yield* new Config.ConfigInvalid({
      path: where,
      reason:
        "commands must be signed: give --secret-file (or TESTBED_FLEET_SECRET), or choose the old unsigned protocol with --compat"
    })
  }
  const jsonify = role === "commander" ? config.commander.jsonify : config.operator.jsonify
  if (!jsonify && !compat) {
    return yield* new Config.ConfigInvalid({
      path: where,
      reason: "plain-text mode (jsonify = False) cannot carry signatures: use --compat"
    })
  }
  const signing = Option.isSome(secret) ? Security.signed(secret.value, config.security.maxSkew) : Security.compat
  return { config: { ...config, broker }, connection, signing }
})

/** What an agent's command line may set over its config file's `[agent]` section. */
export interface AgentFlags {
  readonly id?: string | undefined
  readonly allow?: ReadonlyArray<string> | undefined
  readonly passEnv?: ReadonlyArray<string> | undefined
  readonly commandTimeout?: Duration.Duration | undefined
}

/**
 * The agent's options from the resolved setup and its flags (a flag wins over the file; an empty list counts as not
 * given), the same for `testbed fleet agent` and the package's own agent process.
 */
export const agentOptions = (resolved: Resolved, flags: AgentFlags): Agent.AgentOptions & { readonly id: string } => {
  const { config } = resolved
  const allow = flags.allow !== undefined && flags.allow.length > 0 ? flags.allow : config.agent.allow
  const passEnv = flags.passEnv !== undefined && flags.passEnv.length > 0 ? flags.passEnv : config.agent.passEnv
  const id = flags.id ?? config.agent.id
  return {
    id,
    ids: [id],
    connection: resolved.connection,
    topics: config.topics,
    mode: config.operator.jsonify ? "json" : "plain",
    signing: resolved.signing,
    ...(allow !== undefined ? { allow } : {}),
    ...(passEnv !== undefined ? { passEnv } : {}),
    ...(config.agent.maxCommandBytes !== undefined ? { maxCommandBytes: config.agent.maxCommandBytes } : {}),
    commandTimeout: flags.commandTimeout ?? config.agent.commandTimeout
  }
}
