/**
 * Throwaway TLS material for one run: a self-signed certificate for `localhost` / 127.0.0.1 made with the
 * system's openssl, written into the run's output directory so a report can point at exactly what was used.
 */
import { Effect, FileSystem, Path, Runtime, Schema } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { ExitCode } from "@testbed/events"

export interface Certificate {
  readonly cert: string
  readonly key: string
  /** The certificate a client trusts: self-signed, so the same file as `cert`. */
  readonly ca: string
}

export class CertificateFailed extends Schema.TaggedError<CertificateFailed>()("CertificateFailed", {
  directory: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `could not create a self-signed certificate in ${this.directory}: ${this.reason}`
  }
}

export const selfSigned = Effect.fn("Certificates.selfSigned")(function* (directory: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const fail = (reason: string) => new CertificateFailed({ directory, reason })
  yield* fs.makeDirectory(directory, { recursive: true }).pipe(Effect.mapError((error) => fail(error.message)))
  const cert = path.join(directory, "cert.pem")
  const key = path.join(directory, "key.pem")
  const output = yield* spawner
    .string(
      ChildProcess.make(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-days",
          "2",
          "-subj",
          "/CN=localhost",
          "-addext",
          "subjectAltName=DNS:localhost,IP:127.0.0.1",
          "-keyout",
          key,
          "-out",
          cert
        ],
        { stdin: "ignore" }
      ),
      { includeStderr: true }
    )
    .pipe(
      Effect.scoped,
      Effect.mapError((error) => fail(error.message))
    )
  const made = yield* fs.exists(cert).pipe(Effect.orElseSucceed(() => false))
  if (!made) return yield* fail(`openssl wrote no certificate: ${output.trim()}`)
  return { cert, key, ca: cert } satisfies Certificate
})
