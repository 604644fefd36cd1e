// Certificates for the TLS tests, made by the openssl command line (Debian's openssl, which the interop tests need
// too): the cluster's CA, leaves it signed, another CA and its leaf, an expired leaf.
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"

export const openssl = (args: ReadonlyArray<string>, cwd: string) =>
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] })

const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

/** A CA `NAME.pem`/`NAME.key` in `dir`. */
export const makeCa = (dir: string, name: string) =>
  openssl(
    ["req", "-x509", ...ecKey, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`],
    dir
  )

/**
 * A leaf `NAME.pem`/`NAME.key` signed by the CA `ca`, valid for `days` (0: it ends the second it starts), with the
 * subject alternative name `san` when given (`IP:127.0.0.1`).
 */
export const makeLeaf = (dir: string, name: string, ca: string, days = 2, san?: string) => {
  openssl(["req", ...ecKey, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir)
  if (san !== undefined) writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`)
  openssl(
    ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-out", `${name}.pem`]
      .concat(["-days", String(days), "-set_serial", String(Date.now())])
      .concat(san === undefined ? [] : ["-extfile", `${name}.ext`]),
    dir
  )
}

/**
 * The cluster's CA with leaves `a` and `b`, another CA with a leaf `rogue`, `expired`, and `server` (for
 * 127.0.0.1), in a fresh directory.
 */
export const makePki = () => {
  const dir = mkdtempSync(join(tmpdir(), "testbed-tls-"))
  makeCa(dir, "ca")
  makeCa(dir, "other")
  makeLeaf(dir, "a", "ca")
  makeLeaf(dir, "b", "ca")
  makeLeaf(dir, "rogue", "other")
  makeLeaf(dir, "expired", "ca", 0)
  makeLeaf(dir, "server", "ca", 2, "IP:127.0.0.1")
  return dir
}

/** `makePki`'s directory for a scope, removed at its end. */
export const pki = Effect.acquireRelease(Effect.sync(makePki), (dir) =>
  Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

export const files = (dir: string, leaf: string, ca = "ca") => ({
  ca: join(dir, `${ca}.pem`),
  cert: join(dir, `${leaf}.pem`),
  key: join(dir, `${leaf}.key`)
})

export const flagsOf = (files: { ca: string; cert: string; key: string }) => [
  "--tls-ca",
  files.ca,
  "--tls-cert",
  files.cert,
  "--tls-key",
  files.key
]
