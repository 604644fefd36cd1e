/**
 * Signed envelopes. The database is a transport: anyone who can write to it can enqueue work, whatever the
 * runners' sockets accept. So every attempt request carries an HMAC-SHA256 over its entity id and canonical
 * payload, with a key derived (HKDF) from the cluster secret; runners check it before doing anything. Runners
 * sign each chunk they stream back with a second derived key, so rows written into the database by anyone else
 * are dropped by the coordinator. Comparison is constant-time.
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject, timingSafeEqual } from "node:crypto"
import { ExitCode } from "@testbed/events"
import { Config, Effect, FileSystem, Option, Redacted, Runtime, Schema } from "effect"

/** The two keys of one cluster secret: requests (coordinator → runner) and chunks (runner → coordinator). */
export interface Keys {
  readonly request: Redacted.Redacted<KeyObject>
  readonly chunk: Redacted.Redacted<KeyObject>
}

// A `KeyObject`, made once: from raw bytes every `createHmac` made (and checked) one again.
const derive = (secret: string, info: string) =>
  Redacted.make(createSecretKey(new Uint8Array(hkdfSync("sha256", secret, "testbed-cluster", info, 32))))

/** Derives the keys; the secret itself is not kept. */
export const keys = (secret: Redacted.Redacted<string>): Keys => ({
  request: derive(Redacted.value(secret), "envelope-v1"),
  chunk: derive(Redacted.value(secret), "chunk-v1")
})

/** Hex HMAC-SHA256 over the parts, separated by NUL (no part can shift into the next). */
export const sign = (key: Redacted.Redacted<KeyObject>, parts: ReadonlyArray<string>): string => {
  const hmac = createHmac("sha256", Redacted.value(key))
  parts.forEach((part, i) => {
    if (i > 0) hmac.update("\u0000")
    hmac.update(part)
  })
  return hmac.digest("hex")
}

/** Whether `mac` is the signature of `parts` (constant time). */
export const verify = (key: Redacted.Redacted<KeyObject>, parts: ReadonlyArray<string>, mac: string): boolean => {
  const expected = Buffer.from(sign(key, parts), "hex")
  const given = Buffer.from(mac, "hex")
  return given.length === expected.length && timingSafeEqual(expected, given)
}

/** No cluster secret was given, or it is too short to be one. */
export class SecretMissing extends Schema.TaggedError<SecretMissing>()("SecretMissing", {
  reason: Schema.String
}) {
  /** A flag, file or variable the user must set: the usage exit code (the README promises 2). */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `cluster secret: ${this.reason}`
  }
}

/** Shortest secret accepted: a guessable secret would let anyone who reaches the database run commands. */
export const minimumSecretLength = 16

/**
 * The cluster secret, from `file` (first line) or else `TESTBED_CLUSTER_SECRET`. The environment variable is
 * removed from this process once read, so no child process inherits it.
 */
export const loadSecret = Effect.fn("Envelope.loadSecret")(function* (file: string | undefined) {
  const fs = yield* FileSystem.FileSystem
  const fromFile =
    file === undefined
      ? Option.none<string>()
      : Option.some(
          (yield* fs
            .readFileString(file)
            .pipe(Effect.mapError((error) => new SecretMissing({ reason: `cannot read ${file}: ${error.message}` }))))
            .split("\n")[0]!
            .trim()
        )
  const fromEnv = yield* Config.option(Config.Redacted("TESTBED_CLUSTER_SECRET")).pipe(
    Effect.orElseSucceed(() => Option.none<Redacted.Redacted<string>>())
  )
  delete process.env.TESTBED_CLUSTER_SECRET
  const secret = Option.isSome(fromFile)
    ? fromFile.value
    : Option.isSome(fromEnv)
      ? Redacted.value(fromEnv.value)
      : undefined
  if (secret === undefined) {
    return yield* new SecretMissing({ reason: "set TESTBED_CLUSTER_SECRET or pass --secret-file" })
  }
  if (secret.length < minimumSecretLength) {
    return yield* new SecretMissing({ reason: `it must be at least ${minimumSecretLength} characters` })
  }
  return Redacted.make(secret)
})
