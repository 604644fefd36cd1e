/**
 * The MQTT system governor wire protocol: five topics, their payloads in JSON and plain-text modes, and
 * the fields testbed adds (which old peers ignore). Every inbound payload is decoded here, never trusted.
 */
import { Option, Schema } from "effect"
import * as FastDecode from "./internal/fastDecode.ts"

export const Topics = Schema.Struct({
  command: Schema.String,
  response: Schema.String,
  registration: Schema.String,
  ack: Schema.String,
  commandLoader: Schema.String
})
export type Topics = typeof Topics.Type

/** The defaults of the original `config.ini`. */
export const defaultTopics: Topics = {
  command: "system_performance/commands",
  response: "system_performance/responses",
  registration: "clients/registration",
  ack: "clients/acknowledgment",
  commandLoader: "system_performance/command_loader"
}

/**
 * testbed's own topics sit *below* the old ones: old peers subscribe to the exact old topics (no
 * wildcards), so they never see these.
 */
export const runningTopic = (topics: Topics): string => `${topics.response}/running`
export const lostTopic = (topics: Topics): string => `${topics.registration}/lost`
/** "Who is there?": an operator asks on start and after a reconnect; every agent answers with a registration. */
export const queryTopic = (topics: Topics): string => `${topics.registration}/query`

/**
 * Where the operator sends commands. `shared`: the old protocol's one command topic, which every agent connection
 * receives whole (compat mode, old agents). `per-agent` (native, signed mode): each agent's commands on a topic of its
 * own below the shared one, so the broker hands a command to its agent's connection only.
 */
export const CommandTopics = Schema.Literals(["shared", "per-agent"])
export type CommandTopics = typeof CommandTopics.Type

// An id becomes one topic level only when it cannot change what a subscription matches: no level separator, no
// wildcard, no NUL. Any other id (legal, if odd) keeps the shared topic, which the agent always subscribes to too.
const unsafeTopicLevel = /[/+#\u0000]/

/** The agent's own command topic (`system_performance/commands/<id>`), or `undefined` for an id unfit for one. */
export const agentCommandTopic = (topics: Topics, id: string): string | undefined =>
  id.length === 0 || unsafeTopicLevel.test(id) ? undefined : `${topics.command}/${id}`

/** The topic a command for `id` goes to. */
export const commandTopicFor = (topics: Topics, placement: CommandTopics, id: string): string =>
  placement === "per-agent" ? (agentCommandTopic(topics, id) ?? topics.command) : topics.command

/** Compat mode keeps the old wire; signed (native) mode uses per-agent topics unless told otherwise. */
export const defaultCommandTopics = (signed: boolean): CommandTopics => (signed ? "per-agent" : "shared")

/** operator → agents. `client_id` and `command` are the old protocol; the rest is testbed's. */
export const CommandMessage = Schema.Struct({
  client_id: Schema.String,
  command: Schema.String,
  /** Unique per command and target agent; agents de-duplicate on it. */
  command_id: Schema.optionalKey(Schema.String),
  /** Epoch milliseconds when the command was signed. */
  timestamp: Schema.optionalKey(Schema.Finite),
  /** Hex HMAC-SHA256, see `Signing`. */
  signature: Schema.optionalKey(Schema.String),
  /** Seconds the agent may run the command before ending it. */
  timeout: Schema.optionalKey(Schema.Finite)
})
export type CommandMessage = typeof CommandMessage.Type

/**
 * agent → operator when a shared secret is configured: the id, when it was signed (epoch ms), the agent
 * process's random `session` (its acks and its lost notice name it) and the signature (see
 * `Security.registrationPayload`). Without a secret (`--compat`) the payload is the raw id, as the original sends it.
 */
export const RegistrationMessage = Schema.Struct({
  client_id: Schema.String,
  timestamp: Schema.Finite,
  session: Schema.String,
  signature: Schema.String
})
export type RegistrationMessage = typeof RegistrationMessage.Type

/** operator → agents when a shared secret is configured: the ack of one registration session, signed. */
export const AckMessage = Schema.Struct({
  client_id: Schema.String,
  session: Schema.String,
  signature: Schema.String
})
export type AckMessage = typeof AckMessage.Type

/** commander → operator: the same shape; `client_id` may be `all` in any case. */
export const LoaderMessage = CommandMessage
export type LoaderMessage = CommandMessage

export const ResponseStatus = Schema.Literals(["succeeded", "failed", "timed_out", "refused", "interrupted", "error"])
export type ResponseStatus = typeof ResponseStatus.Type

/** agent → operator and commanders. */
export const ResponseMessage = Schema.Struct({
  client_id: Schema.String,
  command: Schema.String,
  /** Epoch seconds as a decimal string, as the original writes them. */
  start_time: Schema.String,
  end_time: Schema.String,
  /** Absent in the original's "Failed to execute command" answers. */
  output: Schema.optionalKey(Schema.String),
  /** stderr, or the string "None" when it is empty. */
  error: Schema.String,
  exit_code: Schema.optionalKey(Schema.NullOr(Schema.Int)),
  signal: Schema.optionalKey(Schema.NullOr(Schema.String)),
  command_id: Schema.optionalKey(Schema.String),
  /** Seconds. */
  duration: Schema.optionalKey(Schema.Finite),
  timed_out: Schema.optionalKey(Schema.Boolean),
  status: Schema.optionalKey(ResponseStatus),
  /** Why the agent refused to run the command (allowlist, signature, staleness, replay, size). */
  refusal: Schema.optionalKey(Schema.String),
  /** Why the command could not be started, as a tag: `CommandTooLarge`, `CommandSpawnFailed`, `CommandNotFound`, … */
  failure: Schema.optionalKey(Schema.String),
  /** Hex HMAC-SHA256 of every field above, when a shared secret is configured (see `Security.signResponse`). */
  signature: Schema.optionalKey(Schema.String)
})
export type ResponseMessage = typeof ResponseMessage.Type

/** agent → operator on `runningTopic`: the command has started. */
export const RunningNotice = Schema.Struct({
  client_id: Schema.String,
  command_id: Schema.String,
  command: Schema.String,
  start_time: Schema.String,
  signature: Schema.optionalKey(Schema.String)
})
export type RunningNotice = typeof RunningNotice.Type

/**
 * The agent connection's MQTT will on `lostTopic`: the broker publishes it when the agent vanishes (and, for
 * every agent at once, when it shuts down on SIGTERM). Signed over the agent process's session, fixed at connect.
 */
export const LostNotice = Schema.Struct({
  client_ids: Schema.Array(Schema.String),
  session: Schema.optionalKey(Schema.String),
  signature: Schema.optionalKey(Schema.String)
})
export type LostNotice = typeof LostNotice.Type

/** operator → agents on `queryTopic`: who is there? All agents, or only those named. */
export const QueryMessage = Schema.Struct({ client_ids: Schema.optionalKey(Schema.Array(Schema.String)) })
export type QueryMessage = typeof QueryMessage.Type

export type Mode = "json" | "plain"

const decodeCommandJson = Schema.decodeUnknownOption(Schema.fromJsonString(CommandMessage))
const decodeResponseJson = Schema.decodeUnknownOption(Schema.fromJsonString(ResponseMessage))
const decodeRunningJson = Schema.decodeUnknownOption(Schema.fromJsonString(RunningNotice))
const decodeLostJson = Schema.decodeUnknownOption(Schema.fromJsonString(LostNotice))
const decodeRegistrationJson = Schema.decodeUnknownOption(Schema.fromJsonString(RegistrationMessage))
const decodeAckJson = Schema.decodeUnknownOption(Schema.fromJsonString(AckMessage))
const decodeQueryJson = Schema.decodeUnknownOption(Schema.fromJsonString(QueryMessage))

/** `id|command` (split on the first bar) in plain mode, a JSON object otherwise. */
export const decodeCommand = (mode: Mode, payload: string): Option.Option<CommandMessage> => {
  if (mode === "json") {
    // The plain case without the Schema (it is on every command's path); the Schema for anything else.
    const fast = FastDecode.command(payload)
    return fast !== undefined ? Option.some(fast) : decodeCommandJson(payload)
  }
  const bar = payload.indexOf("|")
  return bar < 0 ? Option.none() : Option.some({ client_id: payload.slice(0, bar), command: payload.slice(bar + 1) })
}

const clientIdField = /"client_id"\s*:\s*"([^"\\]*)"/

/**
 * The addressee of a JSON command without decoding it, when it is plainly written: lets an agent serving many
 * ids skip the (much more common) commands for other agents cheaply. `undefined` means "decode to find out".
 */
export const peekClientId = (mode: Mode, payload: string): string | undefined => {
  if (mode === "plain") {
    const bar = payload.indexOf("|")
    return bar < 0 ? undefined : payload.slice(0, bar)
  }
  return clientIdField.exec(payload)?.[1]
}

/**
 * Loader messages: the old operator only parses JSON, the old commander sends `id|command` in plain mode;
 * both are accepted whatever the mode.
 */
export const decodeLoader = (payload: string): Option.Option<LoaderMessage> =>
  Option.orElse(decodeCommandJson(payload), () => decodeCommand("plain", payload))

/** Plain mode cannot carry ids or signatures: only the old two fields go on the wire. */
export const encodeCommand = (mode: Mode, message: CommandMessage): string =>
  mode === "json" ? JSON.stringify(message) : `${message.client_id}|${message.command}`

const plainExtras: ReadonlyArray<readonly [string, keyof ResponseMessage]> = [
  ["Exit Code", "exit_code"],
  ["Signal", "signal"],
  ["Status", "status"],
  ["Duration", "duration"],
  ["Timed Out", "timed_out"],
  ["Command Id", "command_id"],
  ["Refusal", "refusal"],
  ["Failure", "failure"]
]

/**
 * Plain mode is the original's six labelled lines; testbed's extra fields go between `End Time` and `Output`
 * so `Output` and `Error` (which may span lines) stay last, as old readers expect.
 */
export const encodeResponse = (mode: Mode, response: ResponseMessage): string => {
  if (mode === "json") return JSON.stringify(response)
  const lines = [
    `Client: ${response.client_id}`,
    `Command: ${response.command}`,
    `Start Time: ${response.start_time}`,
    `End Time: ${response.end_time}`
  ]
  for (const [label, key] of plainExtras) {
    const value = response[key]
    if (value !== undefined) lines.push(`${label}: ${value === null ? "null" : String(value)}`)
  }
  if (response.output !== undefined) lines.push(`Output: ${response.output}`)
  lines.push(`Error: ${response.error}`)
  return lines.join("\n")
}

const header = /^([A-Za-z ]+): (.*)$/

const parseExtra = (key: keyof ResponseMessage, value: string): unknown => {
  switch (key) {
    case "exit_code":
      return value === "null" ? null : Number(value)
    case "duration":
      return Number(value)
    case "timed_out":
      return value === "True" || value === "true"
    case "signal":
      return value === "null" ? null : value
    default:
      return value
  }
}

const decodeResponseObject = Schema.decodeUnknownOption(ResponseMessage)

/** Reads both modes (JSON first), so an operator understands old agents in either mode. */
export const decodeResponse = (payload: string): Option.Option<ResponseMessage> => {
  const fast = FastDecode.response(payload)
  if (fast !== undefined) return Option.some(fast)
  const json = decodeResponseJson(payload)
  if (Option.isSome(json) || !payload.startsWith("Client: ")) return json
  const fields: Record<string, unknown> = {}
  const lines = payload.split("\n")
  let index = 0
  for (; index < lines.length; index++) {
    const line = lines[index]!
    if (line.startsWith("Output: ") || line.startsWith("Error: ")) break
    const match = header.exec(line)
    if (match === null) return Option.none()
    const label = match[1]!
    const value = match[2]!
    if (label === "Client") fields.client_id = value
    else if (label === "Command") fields.command = value
    else if (label === "Start Time") fields.start_time = value
    else if (label === "End Time") fields.end_time = value
    else {
      const extra = plainExtras.find(([l]) => l === label)
      if (extra !== undefined) fields[extra[1]] = parseExtra(extra[1], value)
    }
  }
  const rest = lines.slice(index).join("\n")
  const errorAt = rest.lastIndexOf("Error: ")
  if (errorAt < 0) return Option.none()
  if (rest.startsWith("Output: ")) fields.output = rest.slice("Output: ".length, Math.max(errorAt - 1, 8))
  fields.error = rest.slice(errorAt + "Error: ".length)
  return decodeResponseObject(fields)
}

/** An answer as reports show it: the signature (wire-level proof, meaningless to a reader) left out. */
export const withoutSignature = (response: ResponseMessage): Omit<ResponseMessage, "signature"> => {
  const { signature: _signature, ...rest } = response
  return rest
}

export const decodeRunning = (payload: string): Option.Option<RunningNotice> => decodeRunningJson(payload)
export const decodeLost = (payload: string): Option.Option<LostNotice> => decodeLostJson(payload)
/** A signed registration; `None` for a raw id (or anything else). */
export const decodeRegistration = (payload: string): Option.Option<RegistrationMessage> =>
  payload.startsWith("{") ? decodeRegistrationJson(payload) : Option.none()
/** A signed ack; `None` for a raw id (what the original and compat mode send) or anything else. */
export const decodeAck = (payload: string): Option.Option<AckMessage> =>
  payload.startsWith("{") ? decodeAckJson(payload) : Option.none()

/** Anything that is not a query naming agents asks every agent: only testbed's operators send queries. */
export const decodeQuery = (payload: string): QueryMessage =>
  Option.getOrElse(decodeQueryJson(payload), (): QueryMessage => ({}))

/**
 * At most `limit` characters of a text that came from outside (a refused command), with how much was left out:
 * a 20 MB command must not draw a 20 MB refusal or log line.
 */
export const capEcho = (text: string, limit = 1024): string =>
  text.length <= limit ? text : `${text.slice(0, limit)}… [${text.length - limit} more characters not echoed]`

/** Epoch seconds as the original formats them (`datetime.timestamp()` printed as a string). */
export const epochSeconds = (millis: number): string => (millis / 1000).toString()
