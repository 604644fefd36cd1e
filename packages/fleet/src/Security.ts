/**
 * What the old protocol lacked: commands signed with a shared secret (HMAC-SHA256 over agent id, command
 * id, timestamp and command), checked for staleness and replay, and an allowlist of what an agent may run.
 */
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto"
import { Duration, Redacted, Result, Schema } from "effect"
import type { CommandMessage, RegistrationMessage } from "./Protocol.ts"

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

const canonical = (clientId: string, commandId: string, timestamp: number, command: string): string =>
  ["testbed-fleet-v1", clientId, commandId, String(timestamp), command].join("\n")

export const signature = (
  secret: Redacted.Redacted<string>,
  clientId: string,
  commandId: string,
  timestamp: number,
  command: string
): string =>
  createHmac("sha256", keyOf(secret))
    .update(canonical(clientId, commandId, timestamp, command))
    .digest("hex")

/** Adds `command_id`, `timestamp` and `signature` when signing; returns the message unchanged in compat mode. */
export const sign = (
  signing: Signing,
  message: CommandMessage,
  commandId: string,
  nowMillis: number
): CommandMessage =>
  signing._tag === "Compat"
    ? { ...message, command_id: commandId }
    : {
        ...message,
        command_id: commandId,
        timestamp: nowMillis,
        signature: signature(signing.secret, message.client_id, commandId, nowMillis, message.command)
      }

export type Refusal = "unsigned" | "forged" | "stale" | "not-allowed"

// Its own first line, so that no command signature can ever pass for a registration or the reverse.
const registrationSignature = (secret: Redacted.Redacted<string>, clientId: string, timestamp: number): string =>
  createHmac("sha256", keyOf(secret))
    .update(["testbed-fleet-registration-v1", clientId, String(timestamp)].join("\n"))
    .digest("hex")

/**
 * The registration payload: the raw id in compat mode (what the original sends), otherwise
 * `{"client_id","timestamp","signature"}` with an HMAC over the id and the time, so a client without the
 * secret cannot register a made-up agent.
 */
export const registrationPayload = (signing: Signing, clientId: string, nowMillis: number): string =>
  signing._tag === "Compat"
    ? clientId
    : JSON.stringify({
        client_id: clientId,
        timestamp: nowMillis,
        signature: registrationSignature(signing.secret, clientId, nowMillis)
      } satisfies RegistrationMessage)

/** Checks a signed registration's signature and age (agents re-sign every resend, so a fresh one is near). */
export const verifyRegistration = (
  signing: Signing,
  message: RegistrationMessage,
  nowMillis: number
): Result.Result<void, Refusal> => {
  if (signing._tag === "Compat") return Result.succeed(undefined)
  const expected = Buffer.from(registrationSignature(signing.secret, message.client_id, message.timestamp))
  const actual = Buffer.from(message.signature)
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return Result.fail("forged")
  if (Math.abs(nowMillis - message.timestamp) > Duration.toMillis(signing.maxSkew)) return Result.fail("stale")
  return Result.succeed(undefined)
}

/** Checks that the command was signed with the secret (not its age). */
export const authenticate = (signing: Signing, message: CommandMessage): Result.Result<void, Refusal> => {
  if (signing._tag === "Compat") return Result.succeed(undefined)
  const { command_id, signature: given, timestamp } = message
  if (command_id === undefined || given === undefined || timestamp === undefined) return Result.fail("unsigned")
  const expected = Buffer.from(signature(signing.secret, message.client_id, command_id, timestamp, message.command))
  const actual = Buffer.from(given)
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return Result.fail("forged")
  return Result.succeed(undefined)
}

/** Signed too long ago (or too far ahead): a replay the receiver can no longer recognise by its id. */
export const isStale = (signing: Signing, message: CommandMessage, nowMillis: number): boolean =>
  signing._tag === "Signed" &&
  message.timestamp !== undefined &&
  Math.abs(nowMillis - message.timestamp) > Duration.toMillis(signing.maxSkew)

/**
 * Checks a signature and its age. An agent checks the age only for ids it does not remember: a late copy of a
 * command it has run (an MQTT redelivery) is a duplicate, not an attack.
 */
export const verify = (signing: Signing, message: CommandMessage, nowMillis: number): Result.Result<void, Refusal> => {
  const authentic = authenticate(signing, message)
  if (Result.isFailure(authentic)) return authentic
  return isStale(signing, message, nowMillis) ? Result.fail("stale") : Result.succeed(undefined)
}

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
