/**
 * Fleet configuration: the old `config.ini` read as is (sections, keys, `pipelineN` in file order, and values
 * interpolated as Python's configparser does: `%%` is `%`, `%(key)s` another key), or the same sections in YAML
 * (no interpolation); testbed's extra keys are optional in both. `MQTT_BROKER` and `CLIENT_ID` override.
 */
import { ExitCode, TimeSpan } from "@testbed/events"
import { Duration, Effect, FileSystem, Result, Runtime, Schema } from "effect"
import { parse as parseYaml } from "yaml"
import * as Ini from "./internal/ini.ts"
import { defaultTopics, type Topics } from "./Protocol.ts"

export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

export interface Pipeline {
  readonly name: string
  readonly steps: ReadonlyArray<string>
}

export type FailurePolicy = "stop" | "continue"

export interface FleetConfig {
  readonly broker: {
    /** Host name, or a full URL (`mqtts://host:8883`). */
    readonly broker: string
    readonly port: number
    readonly username: string | undefined
    readonly passwordFile: string | undefined
    readonly caFile: string | undefined
    readonly certFile: string | undefined
    readonly keyFile: string | undefined
    readonly tls: boolean
  }
  readonly topics: Topics
  readonly operator: {
    readonly registrationTimeout: Duration.Duration
    readonly expectAgents: number | undefined
    readonly pipelineMode: boolean
    readonly realtimeMode: boolean
    readonly jsonify: boolean
    readonly colorlog: boolean
    readonly saveFeedback: boolean
    readonly feedbackFile: string
    readonly receiveCommands: boolean
    readonly pipelines: ReadonlyArray<Pipeline>
    readonly stepTimeout: Duration.Duration
    readonly onFailure: FailurePolicy
    readonly abortAbovePercent: number | undefined
    /** How long an agent reported gone may take to come back before its steps fail. */
    readonly lostGrace: Duration.Duration
  }
  readonly agent: {
    readonly id: string
    readonly allow: ReadonlyArray<string> | undefined
    readonly commandTimeout: Duration.Duration
    /** Variables passed to commands (one name or `*` glob per line); absent: all but testbed's secrets. */
    readonly passEnv: ReadonlyArray<string> | undefined
    /** Longest command (bytes) the agent tries to run. */
    readonly maxCommandBytes: number | undefined
  }
  readonly commander: { readonly jsonify: boolean }
  readonly security: {
    readonly secretFile: string | undefined
    readonly compat: boolean
    readonly maxSkew: Duration.Duration
  }
}

/**
 * Splits a pipeline on `;` like the original, except inside single or double quotes or after a backslash,
 * so `sh -c 'a; b'` stays one command.
 */
export const splitPipeline = (text: string): ReadonlyArray<string> => {
  const steps: Array<string> = []
  let current = ""
  let quote: string | undefined
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (ch === "\\" && quote !== "'" && i + 1 < text.length) {
      current += ch + text[i + 1]
      i++
    } else if (quote !== undefined) {
      if (ch === quote) quote = undefined
      current += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      current += ch
    } else if (ch === ";") {
      steps.push(current)
      current = ""
    } else current += ch
  }
  steps.push(current)
  return steps.map((s) => s.trim()).filter((s) => s !== "")
}

type Values = ReadonlyMap<string, unknown>

const truthy = new Set(["1", "yes", "true", "on"])
const falsy = new Set(["0", "no", "false", "off"])

/**
 * Reads the keys of one section. With `interpolation` (config.ini) a value is interpolated when it is read, as
 * configparser does on `get`: a bad `%` in a key nobody reads is no error, one in a key testbed reads is, and is
 * recorded in `problems`.
 */
const reader = (
  path: string,
  sectionName: string,
  values: Values | undefined,
  interpolation: boolean,
  problems: Array<ConfigInvalid>
) => {
  const bad = (key: string, expected: string, got: unknown) =>
    new ConfigInvalid({ path, reason: `[${sectionName}] ${key}: expected ${expected}, got ${JSON.stringify(got)}` })
  const get = (key: string): unknown => {
    const raw = values?.get(key)
    if (!interpolation || typeof raw !== "string") return raw
    const value = Ini.interpolate(values as ReadonlyMap<string, string>, sectionName, key)
    if (typeof value === "string") return value
    problems.push(new ConfigInvalid({ path, reason: `[${sectionName}] ${key}: ${value.reason}` }))
    return undefined
  }
  return {
    get,
    string: (key: string, fallback: string): string => {
      const v = get(key)
      return v === undefined || v === null ? fallback : String(v)
    },
    optionalString: (key: string): string | undefined => {
      const v = get(key)
      return v === undefined || v === null || v === "" ? undefined : String(v)
    },
    boolean: (key: string, fallback: boolean): boolean | ConfigInvalid => {
      const v = get(key)
      if (v === undefined || v === null) return fallback
      if (typeof v === "boolean") return v
      const s = String(v).trim().toLowerCase()
      return truthy.has(s) ? true : falsy.has(s) ? false : bad(key, "a boolean", v)
    },
    number: (key: string): number | undefined | ConfigInvalid => {
      const v = get(key)
      if (v === undefined || v === null || v === "") return undefined
      const n = typeof v === "number" ? v : Number(String(v).trim())
      return Number.isFinite(n) && n >= 0 ? n : bad(key, "a non-negative number", v)
    },
    /** Bare numbers are seconds, as in the original; otherwise any `TimeSpan` form ("250ms", "2 minutes"). */
    duration: (key: string, fallback: Duration.Duration): Duration.Duration | ConfigInvalid => {
      const v = get(key)
      if (v === undefined || v === null || v === "") return fallback
      return Result.match(TimeSpan.parse(typeof v === "number" ? v : String(v)), {
        onFailure: (reason) => new ConfigInvalid({ path, reason: `[${sectionName}] ${key}: ${reason}` }),
        onSuccess: (duration) => duration
      })
    },
    list: (key: string): ReadonlyArray<string> | undefined => {
      const v = get(key)
      if (v === undefined || v === null) return undefined
      if (Array.isArray(v)) return v.map(String)
      return String(v)
        .split("\n")
        .map((s) => s.trim())
        .filter((s) => s !== "")
    }
  }
}

const check = <A>(value: A | ConfigInvalid): Effect.Effect<Exclude<A, ConfigInvalid>, ConfigInvalid> =>
  value instanceof ConfigInvalid ? Effect.fail(value) : Effect.succeed(value as Exclude<A, ConfigInvalid>)

const pipelinesOf = (operator: Values | undefined, get: (key: string) => unknown): ReadonlyArray<Pipeline> => {
  const out: Array<Pipeline> = []
  const list = get("pipelines")
  if (Array.isArray(list)) {
    list.forEach((entry, index) => {
      if (typeof entry === "string") out.push({ name: `pipeline${index + 1}`, steps: splitPipeline(entry) })
      else if (typeof entry === "object" && entry !== null) {
        const e = entry as { name?: unknown; steps?: unknown }
        const steps = Array.isArray(e.steps) ? e.steps.map(String) : splitPipeline(String(e.steps ?? ""))
        out.push({ name: typeof e.name === "string" ? e.name : `pipeline${index + 1}`, steps })
      }
    })
  }
  // The original takes every key starting with "pipeline" in file order (configparser keeps insertion order).
  for (const key of operator?.keys() ?? []) {
    if (key.startsWith("pipeline") && key !== "pipelines" && key !== "pipeline_mode") {
      out.push({ name: key, steps: splitPipeline(String(get(key) ?? "")) })
    }
  }
  return out
}

/** Builds the configuration from sections (INI or YAML), filling in the original's defaults. */
export const fromSections = Effect.fn("Config.fromSections")(function* (
  path: string,
  sections: ReadonlyMap<string, Values>,
  options: { readonly interpolation?: boolean } = {}
): Effect.fn.Return<FleetConfig, ConfigInvalid> {
  const problems: Array<ConfigInvalid> = []
  const section = (name: string) => reader(path, name, sections.get(name), options.interpolation ?? false, problems)
  const mqtt = section("mqtt")
  const operatorValues = sections.get("operator")
  const op = section("operator")
  const agent = section("agent")
  const commander = section("commander")
  const security = section("security")
  const port = (yield* check(mqtt.number("port"))) ?? 1883
  const onFailure = op.string("on_failure", "stop")
  if (onFailure !== "stop" && onFailure !== "continue") {
    return yield* new ConfigInvalid({
      path,
      reason: `[operator] on_failure: expected stop or continue, got ${onFailure}`
    })
  }
  const abort = yield* check(op.number("abort_above_percent"))
  if (abort !== undefined && abort > 100) {
    return yield* new ConfigInvalid({ path, reason: "[operator] abort_above_percent: expected 0..100" })
  }
  const expect = yield* check(op.number("expect_agents"))
  const maxCommandBytes = yield* check(agent.number("max_command_bytes"))
  const config: FleetConfig = {
    broker: {
      broker: mqtt.string("broker", "localhost"),
      port,
      username: mqtt.optionalString("username"),
      passwordFile: mqtt.optionalString("password_file"),
      caFile: mqtt.optionalString("ca_file"),
      certFile: mqtt.optionalString("cert_file"),
      keyFile: mqtt.optionalString("key_file"),
      tls: yield* check(mqtt.boolean("tls", false))
    },
    topics: {
      command: mqtt.string("command_topic", defaultTopics.command),
      response: mqtt.string("response_topic", defaultTopics.response),
      registration: mqtt.string("registration_topic", defaultTopics.registration),
      ack: mqtt.string("ack_topic", defaultTopics.ack),
      commandLoader: mqtt.string("command_loader_topic", defaultTopics.commandLoader)
    },
    operator: {
      registrationTimeout: yield* check(op.duration("registration_timeout", Duration.seconds(5))),
      expectAgents: expect === undefined ? undefined : Math.floor(expect),
      pipelineMode: yield* check(op.boolean("enable_pipeline_mode", true)),
      realtimeMode: yield* check(op.boolean("enable_realtime_mode", true)),
      jsonify: yield* check(op.boolean("jsonify", true)),
      colorlog: yield* check(op.boolean("colorlog", true)),
      saveFeedback: yield* check(op.boolean("save_feedback", true)),
      feedbackFile: op.string("feedback_file", "feedback.txt"),
      receiveCommands: yield* check(op.boolean("receive_commands", true)),
      pipelines: pipelinesOf(operatorValues, op.get),
      stepTimeout: yield* check(op.duration("step_timeout", Duration.minutes(10))),
      onFailure,
      abortAbovePercent: abort,
      lostGrace: yield* check(op.duration("lost_grace", Duration.seconds(10)))
    },
    agent: {
      id: agent.string("id", "client1"),
      allow: agent.list("allow"),
      commandTimeout: yield* check(agent.duration("command_timeout", Duration.minutes(10))),
      passEnv: agent.list("pass_env"),
      maxCommandBytes: maxCommandBytes === undefined ? undefined : Math.floor(maxCommandBytes)
    },
    commander: { jsonify: yield* check(commander.boolean("jsonify", true)) },
    security: {
      secretFile: security.optionalString("secret_file"),
      compat: yield* check(security.boolean("compat", false)),
      maxSkew: yield* check(security.duration("max_skew", Duration.seconds(30)))
    }
  }
  const [problem] = problems
  return problem === undefined ? config : yield* problem
})

/** The configuration with every default and no file. */
// A defect, not a typed error: with no file there is nothing a user could fix; only a wrong built-in default fails.
export const defaults: Effect.Effect<FleetConfig> = Effect.orDie(fromSections("(defaults)", new Map()))

const yamlSections = (path: string, text: string): Effect.Effect<ReadonlyMap<string, Values>, ConfigInvalid> =>
  Effect.try({
    try: () => parseYaml(text) as unknown,
    catch: (cause) => new ConfigInvalid({ path, reason: `YAML: ${String(cause)}` })
  }).pipe(
    Effect.flatMap((doc) => {
      if (doc === null || doc === undefined) return Effect.succeed(new Map())
      if (typeof doc !== "object" || Array.isArray(doc)) {
        return Effect.fail(new ConfigInvalid({ path, reason: "expected a mapping of sections" }))
      }
      const sections = new Map<string, Values>()
      for (const [name, body] of Object.entries(doc)) {
        if (body === null) continue
        if (typeof body !== "object" || Array.isArray(body)) {
          return Effect.fail(new ConfigInvalid({ path, reason: `section ${name}: expected a mapping` }))
        }
        sections.set(name, new Map(Object.entries(body as Record<string, unknown>)))
      }
      return Effect.succeed(sections)
    })
  )

/** Parses config text; `.yaml`/`.yml` paths are YAML, anything else is the INI form. */
export const parse = (path: string, text: string): Effect.Effect<FleetConfig, ConfigInvalid> => {
  if (/\.ya?ml$/i.test(path)) return Effect.flatMap(yamlSections(path, text), (s) => fromSections(path, s))
  const sections = Ini.parse(text)
  if (sections instanceof Ini.IniSyntaxError) {
    return Effect.fail(new ConfigInvalid({ path, reason: `line ${sections.line}: ${sections.reason}` }))
  }
  return fromSections(path, sections, { interpolation: true })
}

export const load = Effect.fn("Config.load")(function* (
  path: string
): Effect.fn.Return<FleetConfig, ConfigInvalid, FileSystem.FileSystem> {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs
    .readFileString(path)
    .pipe(Effect.mapError((e) => new ConfigInvalid({ path, reason: `cannot read: ${e.message}` })))
  return yield* parse(path, text)
})

/** Applies the environment overrides of the original: `MQTT_BROKER` (host or URL) and `CLIENT_ID`. */
export const withEnv = (
  config: FleetConfig,
  env: { readonly MQTT_BROKER?: string | undefined; readonly CLIENT_ID?: string | undefined }
): FleetConfig => ({
  ...config,
  broker: env.MQTT_BROKER ? { ...config.broker, broker: env.MQTT_BROKER } : config.broker,
  agent: env.CLIENT_ID ? { ...config.agent, id: env.CLIENT_ID } : config.agent
})

/** The broker URL the configuration names: `broker` as given when it is a URL, else mqtt(s)://broker:port. */
export const brokerUrl = (config: FleetConfig): string => {
  const b = config.broker
  if (b.broker.includes("://")) return b.broker
  const host = b.broker.includes(":") && !b.broker.startsWith("[") ? `[${b.broker}]` : b.broker
  return `${b.tls || b.caFile !== undefined ? "mqtts" : "mqtt"}://${host}:${b.port}`
}
