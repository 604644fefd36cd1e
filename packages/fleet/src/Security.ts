/**
 * What the old protocol lacked: every message that decides what runs or what the operator believes is signed
 * with a shared secret (HMAC-SHA256, one domain per kind of message, so no signature passes for another kind),
 * commands are checked for staleness and replay, and an allowlist says what an agent may run.
 */
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto"
import { Duration, Redacted, Result, Schema } from "effect"
import type {
  AckMessage,
  CommandMessage,
  LostNotice,
  RegistrationMessage,
  ResponseMessage,
  RunningNotice
} from "./Protocol.ts"

/** How an agent or operator treats signatures. `compat` is the old, unsigned protocol: an explicit choice. */
export type Signing =
  | { readonly _tag: "Signed"; readonly secret: Redacted.Redacted<string>; readonly maxSkew: Duration.Duration }
  | { readonly _tag: "Compat" }

export const signed = (secret: Redacted.Redacted<string>, maxSkew: Duration.Input = "30 seconds"): Signing => ({
  _tag: "Signed",
  secret,
  maxSkew: Duration.fromInputUnsafe(maxSkew)
})
export const compat: Signing = { _tag: "Compat" }

/** What the old protocol allows, said once when a peer starts in compat mode. */
export const compatWarning =
  "compat mode: the old unsigned protocol — anyone who can publish on the broker can run commands on the agents " +
  "and forge answers, registrations, acks and lost notices"

export type Refusal = "unsigned" | "forged" | "stale" | "not-allowed"
export type Verdict = Result.Result<void, Refusal>

// One key object per secret, imported once: building the HMAC key from the string per message costs more than
// the hash of a short command.
const keys = new WeakMap<Redacted.Redacted<string>, KeyObject>()
const keyOf = (secret: Redacted.Redacted<string>): KeyObject => {
  let key = keys.get(secret)
  if (key === undefined) {
    key = createSecretKey(Buffer.from(Redacted.value(secret), "utf8"))
    keys.set(secret, key)
  }
  return key
}

// A JSON array names every field by position and escapes every separator, so no two messages share a canonical
// form; its first element is the kind of message, so a signature read on one topic is worthless on another.
type Canonical = readonly [kind: string, ...fields: ReadonlyArray<string | number | boolean | null>]

const mac = (secret: Redacted.Redacted<string>, canonical: Canonical): string =>
  createHmac("sha256", keyOf(secret)).update(JSON.stringify(canonical)).digest("hex")

const check = (signing: Signing, canonical: Canonical, given: string | undefined): Verdict => {
  if (signing._tag === "Compat") return Result.succeed(undefined)
  if (given === undefined) return Result.fail("unsigned")
  const expected = Buffer.from(mac(signing.secret, canonical))
  const actual = Buffer.from(given)
  return actual.length === expected.length && timingSafeEqual(actual, expected)
    ? Result.succeed(undefined)
    : Result.fail("forged")
}

const withSignature = <A extends object>(signing: Signing, message: A, canonical: Canonical): A =>
  signing._tag === "Compat" ? message : { ...message, signature: mac(signing.secret, canonical) }

// Commands: every field that changes what runs (the target, the command, its timeout) and what makes it unique.
const commandForm = (message: CommandMessage, commandId: string, timestamp: number): Canonical => [
  "testbed-fleet-command-v2",
  message.client_id,
  commandId,
  timestamp,
  message.timeout ?? null,
  message.command
]

// The command loader's messages (commander → operator) have their own kind: copied onto the command topic, a
// commander's `all` would otherwise pass for a command to every agent.
const loaderForm = (message: CommandMessage, commandId: string, timestamp: number): Canonical => [
  "testbed-fleet-loader-v1",
  ...commandForm(message, commandId, timestamp).slice(1)
]

type CommandForm = typeof commandForm

const signer =
  (form: CommandForm) =>
  (signing: Signing, message: CommandMessage, commandId: string, nowMillis: number): CommandMessage =>
    signing._tag === "Compat"
      ? { ...message, command_id: commandId }
      : {
          ...message,
          command_id: commandId,
          timestamp: nowMillis,
          signature: mac(signing.secret, form(message, commandId, nowMillis))
        }

const authenticator =
  (form: CommandForm) =>
  (signing: Signing, message: CommandMessage): Verdict => {
    if (signing._tag === "Compat") return Result.succeed(undefined)
    const { command_id, timestamp } = message
    if (command_id === undefined || timestamp === undefined) return Result.fail("unsigned")
    return check(signing, form(message, command_id, timestamp), message.signature)
  }

/** Adds `command_id`, `timestamp` and `signature` when signing; returns the message with its id in compat mode. */
export const sign = signer(commandForm)
/** `sign` for the command loader topic (commander → operator). */
export const signLoader = signer(loaderForm)

/** Checks that the command was signed with the secret (not its age). */
export const authenticate = authenticator(commandForm)
const authenticateLoader = authenticator(loaderForm)

/** Signed too long ago (or too far ahead): a replay the receiver can no longer recognise by its id. */
export const isStale = (signing: Signing, message: { readonly timestamp?: number }, nowMillis: number): boolean =>
  signing._tag === "Signed" &&
  message.timestamp !== undefined &&
  Math.abs(nowMillis - message.timestamp) > Duration.toMillis(signing.maxSkew)

/**
 * Checks a signature and its age. An agent checks the age only for ids it does not remember: a late copy of a
 * command it has run (an MQTT redelivery) is a duplicate, not an attack.
 */
export const verify = (signing: Signing, message: CommandMessage, nowMillis: number): Verdict =>
  fresh(signing, message, nowMillis, authenticate(signing, message))

/** `verify` for the command loader topic: signature and age. */
export const verifyLoader = (signing: Signing, message: CommandMessage, nowMillis: number): Verdict =>
  fresh(signing, message, nowMillis, authenticateLoader(signing, message))

const fresh = (signing: Signing, message: { readonly timestamp?: number }, nowMillis: number, authentic: Verdict) =>
  Result.isFailure(authentic) || !isStale(signing, message, nowMillis) ? authentic : Result.fail<Refusal>("stale")

const registrationForm = (clientId: string, session: string, timestamp: number): Canonical => [
  "testbed-fleet-registration-v2",
  clientId,
  session,
  timestamp
]

/**
 * The registration payload: the raw id in compat mode (what the original sends), otherwise
 * `{"client_id","timestamp","session","signature"}`, so a client without the secret cannot register a made-up
 * agent. `session` is random per agent process: the operator's acks name it, and the agent's lost notice too.
 */
export const registrationPayload = (signing: Signing, clientId: string, session: string, nowMillis: number): string =>
  signing._tag === "Compat"
    ? clientId
    : JSON.stringify({
        client_id: clientId,
        timestamp: nowMillis,
        session,
        signature: mac(signing.secret, registrationForm(clientId, session, nowMillis))
      } satisfies RegistrationMessage)

/** Checks a signed registration's signature and age (agents re-sign every resend, so a fresh one is near). */
export const verifyRegistration = (signing: Signing, message: RegistrationMessage, nowMillis: number): Verdict =>
  fresh(
    signing,
    message,
    nowMillis,
    check(signing, registrationForm(message.client_id, message.session, message.timestamp), message.signature)
  )

const ackForm = (clientId: string, session: string): Canonical => ["testbed-fleet-ack-v1", clientId, session]

/** The ack of one registration session: the raw id in compat mode, else signed over the id and the session. */
export const ackPayload = (signing: Signing, clientId: string, session: string): string =>
  signing._tag === "Compat"
    ? clientId
    : JSON.stringify({
        client_id: clientId,
        session,
        signature: mac(signing.secret, ackForm(clientId, session))
      } satisfies AckMessage)

/** An ack counts only when signed for this agent's own session (an old ack, replayed, names another session). */
export const verifyAck = (signing: Signing, message: AckMessage, session: string): Verdict =>
  message.session === session
    ? check(signing, ackForm(message.client_id, message.session), message.signature)
    : Result.fail("forged")

// Every field of an answer, in a fixed order: what the operator reports, records and decides on.
const responseForm = (r: ResponseMessage): Canonical => [
  "testbed-fleet-response-v1",
  r.client_id,
  r.command_id ?? null,
  r.command,
  r.start_time,
  r.end_time,
  r.output ?? null,
  r.error,
  r.exit_code ?? null,
  r.signal ?? null,
  r.duration ?? null,
  r.timed_out ?? null,
  r.status ?? null,
  r.refusal ?? null,
  r.failure ?? null
]

/** The answer with its `signature` (over every field, bound to the agent and command id); as is in compat mode. */
export const signResponse = (signing: Signing, response: ResponseMessage): ResponseMessage =>
  withSignature(signing, response, responseForm(response))

export const verifyResponse = (signing: Signing, response: ResponseMessage): Verdict =>
  check(signing, responseForm(response), response.signature)

const runningForm = (n: RunningNotice): Canonical => [
  "testbed-fleet-running-v1",
  n.client_id,
  n.command_id,
  n.command,
  n.start_time
]

export const signRunning = (signing: Signing, notice: RunningNotice): RunningNotice =>
  withSignature(signing, notice, runningForm(notice))

export const verifyRunning = (signing: Signing, notice: RunningNotice): Verdict =>
  check(signing, runningForm(notice), notice.signature)

const lostForm = (session: string, clientIds: ReadonlyArray<string>): Canonical => [
  "testbed-fleet-lost-v1",
  session,
  ...clientIds
]

/**
 * The agent connection's will: fixed when it connects, so it is signed over the agent process's session rather
 * than a time; the operator believes it only for the session the agent registered with last.
 */
export const lostPayload = (signing: Signing, clientIds: ReadonlyArray<string>, session: string): string =>
  JSON.stringify(withSignature<LostNotice>(signing, { client_ids: clientIds, session }, lostForm(session, clientIds)))

export const verifyLost = (signing: Signing, notice: LostNotice): Verdict =>
  notice.session === undefined
    ? check(signing, lostForm("", notice.client_ids), undefined)
    : check(signing, lostForm(notice.session, notice.client_ids), notice.signature)

/**
 * An allowlist rule: an exact command; a glob whose `*` matches any run of characters *except* shell
 * metacharacters (so `stress-ng *` cannot smuggle `; rm -rf ~`); or `/regex/`, matched against the whole
 * command, whose author answers for what it admits.
 */
export const AllowRule = Schema.String
export type AllowRule = typeof AllowRule.Type

const shellMeta = "[^;&|`$<>(){}\\\\\\n\\r!*?\\[\\]#~'\"]"
const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")

const compileRule = (rule: string): RegExp => {
  if (rule.length > 2 && rule.startsWith("/") && rule.endsWith("/")) return new RegExp(`^(?:${rule.slice(1, -1)})$`)
  if (rule.includes("*")) return new RegExp(`^${rule.split("*").map(escapeRegex).join(`${shellMeta}*`)}$`)
  return new RegExp(`^${escapeRegex(rule)}$`)
}

export interface Allowlist {
  /** Undefined when any command may run (no allowlist given). */
  readonly rules: ReadonlyArray<string> | undefined
  readonly allows: (command: string) => boolean
}

export const allowlist = (rules: ReadonlyArray<string> | undefined): Allowlist => {
  if (rules === undefined) return { rules, allows: () => true }
  const compiled = rules.map(compileRule)
  return { rules, allows: (command) => compiled.some((re) => re.test(command.trim())) }
}
