// Mutual TLS on the runners' sockets: the files are checked at start (exit 2 naming the flag and the file), runners
// and a coordinator holding certificates of the cluster's CA run one experiment over two runners, and a runner's
// port refuses plain TCP, a client without a certificate and one whose certificate another CA signed.
// Certificates are made by the openssl command line (Debian's openssl, which the interop tests need too).
import { execFileSync } from "node:child_process"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { join } from "node:path"
import * as Tls from "node:tls"
import { NodeServices } from "@effect/platform-node"
import { afterAll, assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as SocketTls from "../src/SocketTls.ts"
import * as Pki from "./pki.ts"
import { files, flagsOf, makePki } from "./pki.ts"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"
import { placements, readEvents, type Runner, sleepersExperiment, startRunner, testbed } from "./processes.ts"

/** The error `load` fails with, as flag and reason. */
const refusal = (given: { ca: string; cert: string; key: string }) =>
  SocketTls.load(given).pipe(
    Effect.flip,
    Effect.map((error) => ({
      tag: error._tag,
      flag: error.flag,
      file: error.file,
      reason: error.reason,
      message: error.message
    })),
    Effect.provide(NodeServices.layer)
  )

describe("SocketTls.load", () => {
  const dir = makePki()
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.effect("a certificate of the cluster's CA and its key are read; the key is redacted", () =>
    Effect.gen(function* () {
      const tls = yield* SocketTls.load(files(dir, "a")).pipe(Effect.provide(NodeServices.layer))
      assert.include(tls.cert, "BEGIN CERTIFICATE")
      assert.include(Redacted.value(tls.key), "PRIVATE KEY")
      assert.notInclude(String(tls.key), "PRIVATE KEY")
      assert.notInclude(JSON.stringify(tls), "PRIVATE KEY")
    })
  )

  it.effect("a key that is not the certificate's is refused, naming --tls-key", () =>
    Effect.gen(function* () {
      const error = yield* refusal({ ...files(dir, "a"), key: join(dir, "b.key") })
      assert.deepStrictEqual([error.tag, error.flag, error.file], ["TlsFileInvalid", "--tls-key", join(dir, "b.key")])
      assert.include(error.message, "not the key of the certificate")
    })
  )

  it.effect("a certificate another CA signed is refused, naming --tls-cert", () =>
    Effect.gen(function* () {
      const error = yield* refusal(files(dir, "rogue"))
      assert.deepStrictEqual([error.flag, error.file], ["--tls-cert", join(dir, "rogue.pem")])
      assert.include(error.message, "not signed by the CA")
    })
  )

  it.effect("a CA file that holds no CA certificate is refused, naming --tls-ca", () =>
    Effect.gen(function* () {
      const error = yield* refusal({ ...files(dir, "a"), ca: join(dir, "b.pem") })
      assert.deepStrictEqual([error.flag, error.reason], ["--tls-ca", "not a CA certificate"])
    })
  )

  it.effect("a missing file, or one that is no PEM, is refused, naming its flag", () =>
    Effect.gen(function* () {
      const missing = yield* refusal({ ...files(dir, "a"), ca: join(dir, "nowhere.pem") })
      assert.strictEqual(missing.flag, "--tls-ca")
      assert.include(missing.message, "cannot read it")
      writeFileSync(join(dir, "junk.pem"), "not a certificate\n")
      const junk = yield* refusal({ ...files(dir, "a"), cert: join(dir, "junk.pem") })
      assert.deepStrictEqual([junk.flag, junk.reason], ["--tls-cert", "not a PEM certificate"])
    })
  )

  it.live("an expired certificate is refused at start, naming --tls-cert", () =>
    Effect.gen(function* () {
      // Made with `-days 0`: it ends the second it starts; wait (bounded) until that second is over.
      const ends = Date.parse(
        execFileSync("openssl", ["x509", "-in", join(dir, "expired.pem"), "-noout", "-enddate"], {
          encoding: "utf8"
        }).split("=")[1]!
      )
      yield* Effect.sleep(Math.max(0, Math.min(3000, ends + 1100 - Date.now())))
      const error = yield* refusal(files(dir, "expired"))
      assert.strictEqual(error.flag, "--tls-cert")
      assert.include(error.message, "expired on")
    })
  )

  it.effect("some of the three flags without the others: TlsFlagsIncomplete names the missing ones", () =>
    Effect.gen(function* () {
      const none = yield* SocketTls.fromFlags({ ca: Option.none(), cert: Option.none(), key: Option.none() })
      assert.isTrue(Option.isNone(none))
      const error = yield* SocketTls.fromFlags({
        ca: Option.some(join(dir, "ca.pem")),
        cert: Option.none(),
        key: Option.none()
      }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "TlsFlagsIncomplete")
      assert.include(error.message, "--tls-cert, --tls-key missing")
    }).pipe(Effect.provide(NodeServices.layer))
  )
})

/** Two runners with certificates of the cluster's CA (`ta`: a, `tb`: b), on a throwaway Postgres. */
class TlsRunners extends Context.Service<
  TlsRunners,
  {
    readonly url: string
    readonly pki: string
    readonly ports: ReadonlyArray<number>
    readonly all: ReadonlyArray<Runner>
  }
>()("test/TlsRunners") {
  static readonly layer = Layer.effect(
    TlsRunners,
    Effect.gen(function* () {
      const { url } = yield* Postgres
      const pki = yield* Pki.pki
      const ports = [yield* freePort, yield* freePort]
      const start = (name: string, port: number, leaf: string) =>
        startRunner(url, name, port, ["--no-detect", "--slots", "2", ...flagsOf(files(pki, leaf))])
      const all = yield* Effect.all([start("ta", ports[0]!, "a"), start("tb", ports[1]!, "b")], {
        concurrency: "unbounded"
      })
      return { url, pki, ports, all }
    })
  ).pipe(Layer.provideMerge(Postgres.layer))
}

/** Four tests of half a second each (`exec sleep 0.5`), four at a time. */
const sleepers = sleepersExperiment("testbed-tls-run-")

type Probe = {
  readonly secured: boolean
  readonly authorized: boolean
  readonly closed: boolean
  readonly error?: string
}

/**
 * Dials `port` and reports what happened within 3 s: whether the handshake completed from the client's side, and
 * whether the server then closed the connection (it does so at once when it refuses the client's certificate).
 * `tls` undefined: plain TCP, a few bytes of HTTP sent.
 */
const probe = (port: number, tls: Tls.ConnectionOptions | undefined) =>
  Effect.callback<Probe>((resume) => {
    let secured = false
    let authorized = false
    let error: string | undefined
    const socket =
      tls === undefined
        ? Net.connect({ host: "127.0.0.1", port }, () => socket.write("GET / HTTP/1.0\r\n\r\n"))
        : Tls.connect({ host: "127.0.0.1", port, checkServerIdentity: () => undefined, ...tls }, () => {
            secured = true
            authorized = (socket as Tls.TLSSocket).authorized
            // TLS 1.3: the server checks the client's certificate after the client's side of the handshake is done;
            // a refusal arrives as an alert on the first read.
            socket.write("ping")
          })
    socket.on("data", () => {})
    socket.on("error", (cause) => {
      error = cause.message
    })
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.succeed({ secured, authorized, closed: false, ...(error === undefined ? {} : { error }) }))
    }, 3_000)
    socket.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed({ secured, authorized, closed: true, ...(error === undefined ? {} : { error }) }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

describe.skipIf(skipWithoutPostgres)("runner sockets over mutual TLS", () => {
  layer(TlsRunners.layer, { timeout: "300 seconds", excludeTestServices: true })((it) => {
    it.effect(
      "runners and a coordinator with certificates of the cluster's CA run one experiment over both runners; one without still runs it, through Postgres",
      () =>
        Effect.gen(function* () {
          const { url, pki, all } = yield* TlsRunners
          const { file, out } = yield* sleepers
          // One run of four tests, two slots per runner: placement by free slots gives each runner two, and a
          // dispatch waits until both runners hold shards (internal/joining.ts), so neither is passed over for
          // having just joined. The coordinator holds certificate a; runner tb holds b.
          const ran = yield* testbed(
            ["run", file, "--cluster", url, "--plain", "--output-dir", out].concat(flagsOf(files(pki, "a")))
          )
          assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr)
          const runners = placements(readEvents(ran.runDir!)).map((placement) => placement.runner)
          assert.strictEqual(runners.length, 4, runners.join(", "))
          assert.deepStrictEqual([...new Set(runners)].sort(), ["ta", "tb"], runners.join(", "))
          for (const runner of all) assert.include(runner.output(), "(mutual TLS)")
          // A coordinator without certificates: the runners' sockets refuse its dials, and its requests and their
          // replies go through Postgres alone (docs/cluster.md, section 6).
          const plain = yield* testbed(["run", file, "--cluster", url, "--plain", "--output-dir", out])
          assert.strictEqual(plain.code, 0, plain.stdout + plain.stderr)
          assert.include(plain.stdout, "4 passed")
        }),
      { timeout: 120_000 }
    )

    it.effect(
      "a runner's port refuses plain TCP, a client without a certificate and one whose certificate another CA signed",
      () =>
        Effect.gen(function* () {
          const { pki, ports } = yield* TlsRunners
          const port = ports[0]!
          const pem = (name: string) => readFileSync(join(pki, name), "utf8")
          const member = yield* probe(port, { ca: pem("ca.pem"), cert: pem("b.pem"), key: pem("b.key") })
          assert.deepStrictEqual([member.secured, member.authorized, member.closed], [true, true, false], member.error)
          const anonymous = yield* probe(port, { ca: pem("ca.pem") })
          assert.isTrue(anonymous.closed, "a client without a certificate was kept")
          const rogue = yield* probe(port, { ca: pem("ca.pem"), cert: pem("rogue.pem"), key: pem("rogue.key") })
          assert.isTrue(rogue.closed, "a client whose certificate another CA signed was kept")
          const plain = yield* probe(port, undefined)
          assert.isTrue(plain.closed, "a plain TCP client was kept")
        }),
      { timeout: 60_000 }
    )

    it.effect(
      "flags: some of the three without the others, or files that do not belong together, exit 2 before connecting",
      () =>
        Effect.gen(function* () {
          const { url, pki } = yield* TlsRunners
          const partial = yield* testbed(["runner", "--cluster", url, "--tls-ca", join(pki, "ca.pem")])
          assert.strictEqual(partial.code, 2, partial.stdout + partial.stderr)
          assert.include(partial.stderr, "--tls-cert, --tls-key missing")
          const { file, out } = yield* sleepers
          const mismatched = yield* testbed(
            ["run", file, "--cluster", url, "--output-dir", out].concat(
              flagsOf({ ...files(pki, "a"), key: join(pki, "b.key") })
            )
          )
          assert.strictEqual(mismatched.code, 2, mismatched.stdout + mismatched.stderr)
          assert.include(mismatched.stderr, `--tls-key ${join(pki, "b.key")}: not the key of the certificate`)
        }),
      { timeout: 60_000 }
    )
  })
})
