// The cluster's traffic to Postgres over TLS: a Postgres that refuses unencrypted connections on TCP (`hostnossl …
// reject`), a runner and a coordinator given `?sslmode=verify-full` and the CA in NODE_EXTRA_CA_CERTS run an
// experiment; the same runner without `sslmode` is refused by the server (exit 3), and with it but without the CA
// it does not trust the server (exit 3, naming the certificate). The test's own checks connect as a role the server
// lets in unencrypted, so they need no CA.
import { execFileSync, spawn } from "node:child_process"
import { chownSync, copyFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Pki from "./pki.ts"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"
import {
  cli,
  exited,
  lockExpiry,
  placements,
  readEvents,
  secret,
  stopChild,
  temporaryDirectory,
  testbed,
  waitForRunner
} from "./processes.ts"

/** Runs SQL as the superuser over the server's Unix socket (no TLS there), as user postgres. */
const psql = (postgres: { readonly dir: string; readonly port: number }, sql: string) =>
  execFileSync(
    process.getuid?.() === 0 ? "runuser" : "psql",
    (process.getuid?.() === 0 ? ["-u", "postgres", "--", "psql"] : []).concat([
      "-h",
      postgres.dir,
      "-p",
      String(postgres.port),
      "-U",
      "postgres",
      "-v",
      "ON_ERROR_STOP=1",
      "-Atc",
      sql
    ]),
    { encoding: "utf8", timeout: 60_000 }
  )

/**
 * The throwaway Postgres with TLS on (the server certificate `server`, for 127.0.0.1, signed by the test CA) and
 * unencrypted TCP refused except for the role `plain` the test's own checks use.
 */
class TlsPostgres extends Context.Service<
  TlsPostgres,
  { readonly port: number; readonly pki: string; readonly tlsUrl: string; readonly plainUrl: string }
>()("test/TlsPostgres") {
  static readonly layer = Layer.effect(
    TlsPostgres,
    Effect.gen(function* () {
      const postgres = yield* Postgres
      const pki = yield* Pki.pki
      const data = join(postgres.dir, "data")
      copyFileSync(join(pki, "server.pem"), join(data, "server.crt"))
      copyFileSync(join(pki, "server.key"), join(data, "server.key"))
      if (process.getuid?.() === 0) {
        const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim())
        const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim())
        chownSync(join(data, "server.crt"), uid, gid)
        chownSync(join(data, "server.key"), uid, gid)
      }
      // pg_hba.conf is read top down: `plain` may come in unencrypted, everyone else on TCP only over TLS.
      writeFileSync(
        join(data, "pg_hba.conf"),
        [
          "local all all trust",
          "hostnossl all plain 127.0.0.1/32 trust",
          "hostnossl all all 127.0.0.1/32 reject",
          "hostssl all all 127.0.0.1/32 trust",
          ""
        ].join("\n")
      )
      psql(postgres, "CREATE ROLE plain LOGIN SUPERUSER")
      psql(postgres, "ALTER SYSTEM SET ssl = on")
      psql(postgres, "SELECT pg_reload_conf()")
      return {
        port: postgres.port,
        pki,
        tlsUrl: `postgres://postgres@127.0.0.1:${postgres.port}/postgres?sslmode=verify-full`,
        plainUrl: `postgres://plain@127.0.0.1:${postgres.port}/postgres`
      }
    })
  ).pipe(Layer.provideMerge(Postgres.layer))
}

/** A runner process with `env` added, stopped (SIGTERM, then SIGKILL) at the end of the scope. */
const runner = (url: string, name: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const port = yield* freePort
      const workdir = yield* temporaryDirectory(`testbed-runner-${name}-`)
      const child = spawn(
        process.execPath,
        [cli, "runner", "--cluster", url, "--name", name, "--advertise", `127.0.0.1:${port}`].concat([
          "--workdir",
          workdir,
          "--lock-expiry",
          lockExpiry,
          "--no-detect",
          "--slots",
          "2"
        ]),
        { env: { ...process.env, TESTBED_CLUSTER_SECRET: secret, ...env }, stdio: ["ignore", "pipe", "pipe"] }
      )
      let output = ""
      child.stdout?.on("data", (data) => (output = (output + String(data)).slice(-20_000)))
      child.stderr?.on("data", (data) => (output = (output + String(data)).slice(-20_000)))
      return { child, output: () => output }
    }),
    ({ child }) => stopChild(child)
  )

/** A runner that must fail to start: its exit code (it is killed past 90 s) and output. */
const refusedRunner = (url: string, env: Record<string, string>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { child, output } = yield* runner(url, "refused", env)
      const timer = setTimeout(() => child.kill("SIGKILL"), 90_000)
      const code = yield* Effect.promise(() => exited(child))
      clearTimeout(timer)
      return { code, output: output() }
    })
  )

describe.skipIf(skipWithoutPostgres)("the cluster's Postgres over TLS", () => {
  layer(TlsPostgres.layer, { timeout: "300 seconds", excludeTestServices: true })((it) => {
    it.effect(
      "a runner and a coordinator given sslmode=verify-full and the CA run an experiment on a server that refuses unencrypted TCP",
      () =>
        Effect.gen(function* () {
          const { pki, tlsUrl, plainUrl } = yield* TlsPostgres
          const trust = { NODE_EXTRA_CA_CERTS: join(pki, "ca.pem") }
          yield* runner(tlsUrl, "tls", trust)
          yield* waitForRunner(plainUrl, "tls", true)
          const dir = yield* temporaryDirectory("testbed-pgtls-")
          const file = join(dir, "one.yaml")
          writeFileSync(
            file,
            [
              "name: one",
              "tests:",
              "  - name: t",
              "    services:",
              '      c: { implementation: exec, role: client, parameters: { program: "true" } }',
              ""
            ].join("\n")
          )
          const ran = yield* testbed(
            ["run", file, "--cluster", tlsUrl, "--plain", "--output-dir", join(dir, "out")],
            trust
          )
          assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr)
          assert.deepStrictEqual(
            placements(readEvents(ran.runDir!)).map((placement) => placement.runner),
            ["tls"]
          )
        }),
      { timeout: 180_000 }
    )

    it.effect(
      "without sslmode the server refuses the runner; with it but without the CA the runner refuses the server: exit 3",
      () =>
        Effect.gen(function* () {
          const { pki, tlsUrl } = yield* TlsPostgres
          const unencrypted = yield* refusedRunner(tlsUrl.replace("?sslmode=verify-full", ""), {
            NODE_EXTRA_CA_CERTS: join(pki, "ca.pem")
          })
          assert.strictEqual(unencrypted.code, 3, unencrypted.output)
          assert.include(unencrypted.output, "no encryption")
          const untrusted = yield* refusedRunner(tlsUrl, {})
          assert.strictEqual(untrusted.code, 3, untrusted.output)
          assert.match(untrusted.output, /certificate/i)
        }),
      { timeout: 240_000 }
    )
  })
})
