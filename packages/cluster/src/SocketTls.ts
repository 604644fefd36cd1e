/**
 * Mutual TLS on the runners' sockets (`--tls-ca FILE --tls-cert FILE --tls-key FILE` on `testbed runner` and on
 * `testbed run --cluster`). Without it those sockets are plain TCP: requests are signed (Envelope.ts), so nobody
 * without the secret gets work done, but what they carry (requests, the events and logs streamed back) is readable
 * on the wire. With it, a runner accepts a connection only from a peer whose certificate the cluster's CA signed,
 * and dials other runners the same way.
 *
 * The CA is the cluster's own: every certificate it signs is a member, whatever its host name (runners are dialled
 * at the address they advertise, which may be an IP or a name behind NAT), so the peer's name is not checked. That
 * is the trust the shared secret already gives (any member can forge another's chunks); the CA must sign nothing
 * else.
 *
 * The files are read and checked once, at start: a key that does not belong to its certificate, a certificate the
 * CA did not sign or one out of its validity period ends the command with exit 2 naming the flag and the file,
 * instead of every handshake failing later with a TLS alert.
 */
import { createPrivateKey, X509Certificate } from "node:crypto"
import { ExitCode } from "@testbed/events"
import { Effect, FileSystem, Option, Redacted, Runtime, Schema } from "effect"

/** The PEM contents, read once. The key stays redacted: it is never logged. */
export interface SocketTls {
  readonly ca: string
  readonly cert: string
  readonly key: Redacted.Redacted<string>
}

/** The three flags' values, each maybe given. */
export interface Flags {
  readonly ca: Option.Option<string>
  readonly cert: Option.Option<string>
  readonly key: Option.Option<string>
}

/** Some of `--tls-ca`, `--tls-cert`, `--tls-key` were given, not all three. */
export class TlsFlagsIncomplete extends Schema.TaggedError<TlsFlagsIncomplete>()("TlsFlagsIncomplete", {
  missing: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `mutual TLS needs --tls-ca, --tls-cert and --tls-key together: ${this.missing.join(", ")} missing`
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

/** A TLS file could not be read, or is not what its flag needs. */
export class TlsFileInvalid extends Schema.TaggedError<TlsFileInvalid>()("TlsFileInvalid", {
  flag: Schema.String,
  file: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.flag} ${this.file}: ${this.reason}`
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

/** PEM files are a few KiB; anything much larger is not one (and is not read whole into memory). */
const maxFileBytes = 1024 * 1024

const readPem = Effect.fn("SocketTls.readPem")(function* (flag: string, file: string) {
  const fs = yield* FileSystem.FileSystem
  const invalid = (reason: string) => new TlsFileInvalid({ flag, file, reason })
  const info = yield* fs.stat(file).pipe(Effect.mapError((error) => invalid(`cannot read it: ${error.message}`)))
  if (info.type !== "File") return yield* invalid("not a file")
  if (Number(info.size) > maxFileBytes) return yield* invalid(`larger than ${maxFileBytes} bytes: not a PEM file`)
  return yield* fs.readFileString(file).pipe(Effect.mapError((error) => invalid(`cannot read it: ${error.message}`)))
})

/** Parses PEM text as a certificate, or fails naming the flag. */
const certificate = (flag: string, file: string, pem: string) =>
  Effect.try({
    try: () => new X509Certificate(pem),
    catch: () => new TlsFileInvalid({ flag, file, reason: "not a PEM certificate" })
  })

/** A certificate must be within its validity period now: an expired one fails every handshake. */
const current = (flag: string, file: string, cert: X509Certificate, now: Date) =>
  now < new Date(cert.validFrom)
    ? Effect.fail(new TlsFileInvalid({ flag, file, reason: `not valid before ${cert.validFrom}` }))
    : now > new Date(cert.validTo)
      ? Effect.fail(new TlsFileInvalid({ flag, file, reason: `expired on ${cert.validTo}` }))
      : Effect.void

/** Checks the three files belong together and reads them. */
export const load = Effect.fn("SocketTls.load")(function* (files: {
  readonly ca: string
  readonly cert: string
  readonly key: string
}) {
  const caPem = yield* readPem("--tls-ca", files.ca)
  const certPem = yield* readPem("--tls-cert", files.cert)
  const keyPem = yield* readPem("--tls-key", files.key)
  const ca = yield* certificate("--tls-ca", files.ca, caPem)
  const cert = yield* certificate("--tls-cert", files.cert, certPem)
  const key = yield* Effect.try({
    try: () => createPrivateKey(keyPem),
    catch: () => new TlsFileInvalid({ flag: "--tls-key", file: files.key, reason: "not a PEM private key" })
  })
  const now = new Date()
  yield* current("--tls-ca", files.ca, ca, now)
  yield* current("--tls-cert", files.cert, cert, now)
  if (!ca.ca) {
    return yield* new TlsFileInvalid({ flag: "--tls-ca", file: files.ca, reason: "not a CA certificate" })
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    return yield* new TlsFileInvalid({
      flag: "--tls-cert",
      file: files.cert,
      reason: `not signed by the CA of --tls-ca ${files.ca}`
    })
  }
  if (!cert.checkPrivateKey(key)) {
    return yield* new TlsFileInvalid({
      flag: "--tls-key",
      file: files.key,
      reason: `not the key of the certificate --tls-cert ${files.cert}`
    })
  }
  return { ca: caPem, cert: certPem, key: Redacted.make(keyPem) } satisfies SocketTls
})

/** None of the flags: plain TCP; all three: the files loaded; some: `TlsFlagsIncomplete`. */
export const fromFlags = Effect.fn("SocketTls.fromFlags")(function* (flags: Flags) {
  const given = [
    ["--tls-ca", flags.ca],
    ["--tls-cert", flags.cert],
    ["--tls-key", flags.key]
  ] as const
  const missing = given.filter(([, value]) => Option.isNone(value)).map(([flag]) => flag)
  if (missing.length === given.length) return Option.none<SocketTls>()
  if (Option.isNone(flags.ca) || Option.isNone(flags.cert) || Option.isNone(flags.key)) {
    return yield* new TlsFlagsIncomplete({ missing })
  }
  return Option.some(yield* load({ ca: flags.ca.value, cert: flags.cert.value, key: flags.key.value }))
})

/**
 * Node's options for both ends: TLS 1.3 only (both ends are testbed), the cluster CA as the only trust anchor, and
 * the peer's name unchecked (see the module comment).
 */
export const nodeOptions = (tls: SocketTls) => ({
  ca: tls.ca,
  cert: tls.cert,
  key: Redacted.value(tls.key),
  minVersion: "TLSv1.3" as const
})

/** A client's: the server's certificate must chain to the CA; its name is not checked. */
export const clientOptions = (tls: SocketTls) => ({
  ...nodeOptions(tls),
  checkServerIdentity: () => undefined
})

/** A server's: a client must present a certificate the CA signed, or the handshake fails. */
export const serverOptions = (tls: SocketTls) => ({
  ...nodeOptions(tls),
  requestCert: true,
  rejectUnauthorized: true
})
