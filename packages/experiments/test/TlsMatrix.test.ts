// Integration: the TLS interop matrix (fixtures/experiments/tls-matrix.yaml) on real stacks — OpenSSL, GnuTLS,
// Botan, Go's crypto/tls and Java's JSSE from Debian packages. Each test runs the fixture's own cases and
// assertions on a few cells (the full matrix is bench/interop.ts), so what is checked here is what users run.
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as Yaml from "yaml"
import { Experiment } from "../src/index.ts"
import { fixtures, hasProgram, provide } from "./support.ts"

const programs = ["openssl", "gnutls-serv", "gnutls-cli", "botan", "go", "java", "javac", "tcpdump", "tshark"]
const hasStacks = programs.every(hasProgram)
// Locally without the stacks the tests skip; in CI (CI=true) they run and fail, saying what is missing.
const runIt = hasStacks || process.env.CI !== undefined

type Entry = string | { readonly implementation: string; readonly parameters?: Record<string, string> }
interface Matrix {
  readonly name: string
  servers: ReadonlyArray<Entry>
  clients: ReadonlyArray<Entry>
  readonly [key: string]: unknown
}

const fixture = Yaml.parse(readFileSync(`${fixtures}tls-matrix.yaml`, "utf8")) as {
  matrices: Array<Matrix>
  [key: string]: unknown
}

// The cells' budget here also covers building the Go and Java peers on a fresh machine (the first cell of each
// builds them into the cache; see the plugins README); the fixture's own 60 s is for warm runs.
/** The fixture with only the cells given per case (case → [servers, clients]), written next to the run. */
const runCells = (
  cells: Record<string, readonly [ReadonlyArray<Entry>, ReadonlyArray<Entry>]>,
  capture = false,
  plugins: Record<string, string> = {}
) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-tls-matrix-" })
    mkdirSync(`${dir}/plugins`)
    for (const [file, text] of Object.entries(plugins)) writeFileSync(`${dir}/plugins/${file}`, text)
    const matrices = Object.entries(cells).map(([name, [servers, clients]]) => {
      const matrix = fixture.matrices.find((m) => m.name === name)
      assert.isDefined(matrix, `no case ${name} in tls-matrix.yaml`)
      return { ...matrix, servers, clients }
    })
    const file = `${dir}/tls-matrix.yaml`
    writeFileSync(
      file,
      Yaml.stringify(
        { ...fixture, test_timeout: "5 minutes", capture, paths: { plugins: "plugins" }, matrices },
        { aliasDuplicateObjects: false }
      )
    )
    const outcome = yield* Experiment.run(file, { outputDir: dir, progress: "none", concurrency: 2 })
    const statuses = new Map((outcome.result?.tests ?? []).map((test) => [test.name, test]))
    return { outcome, statuses }
  })

const cell = (name: string, server: string, client: string) => `${name} [${server} server, ${client} client]`

const missing = programs.filter((program) => !hasProgram(program))

describe("TLS interop matrix", () => {
  it.live.skipIf(!runIt)(
    "each stack's two roles against OpenSSL (Botan's echo server declares itself unsupported)",
    () =>
      provide(
        Effect.gen(function* () {
          assert.deepStrictEqual(missing, [], "TLS stacks missing (scripts/install-system-deps.sh installs them)")
          const others = ["tls-gnutls", "tls-botan", "tls-go", "tls-java"]
          const { statuses } = yield* runCells({ chacha20: [["tls-openssl", ...others], ["tls-openssl"]] })
          const { statuses: asClients } = yield* runCells({ chacha20: [["tls-openssl"], others] })
          for (const server of ["tls-openssl", "tls-gnutls", "tls-go", "tls-java"]) {
            const test = statuses.get(cell("chacha20", server, "tls-openssl"))
            assert.strictEqual(test?.status, "passed", `${server} server: ${test?.reason}`)
          }
          const botanServer = statuses.get(cell("chacha20", "tls-botan", "tls-openssl"))
          assert.strictEqual(botanServer?.status, "unsupported")
          for (const client of others) {
            const test = asClients.get(cell("chacha20", "tls-openssl", client))
            assert.strictEqual(test?.status, "passed", `${client} client: ${test?.reason}`)
          }
        })
      ),
    { timeout: 300_000 }
  )

  it.live.skipIf(!runIt)(
    "every case passes on OpenSSL × OpenSSL; stacks that lack a case say unsupported (exit 127)",
    () =>
      provide(
        Effect.gen(function* () {
          const openssl = ["tls-openssl"]
          const { statuses } = yield* runCells({
            tls12: [openssl, openssl],
            tls13: [openssl, ["tls-openssl", "tls-botan"]],
            chacha20: [openssl, openssl],
            x25519: [openssl, openssl],
            resumption: [openssl, openssl],
            alpn: [openssl, openssl],
            "mutual-auth": [openssl, ["tls-openssl", "tls-botan"]],
            transfer: [openssl, ["tls-openssl", "tls-gnutls"]],
            keyupdate: [openssl, ["tls-openssl", "tls-go"]]
          })
          for (const name of fixture.matrices.map((m) => m.name)) {
            const test = statuses.get(cell(name, "tls-openssl", "tls-openssl"))
            assert.strictEqual(test?.status, "passed", `${name}: ${test?.reason}`)
          }
          for (const [name, client] of [
            ["tls13", "tls-botan"],
            ["mutual-auth", "tls-botan"],
            ["transfer", "tls-gnutls"],
            ["keyupdate", "tls-go"]
          ] as const) {
            const test = statuses.get(cell(name, "tls-openssl", client))
            assert.strictEqual(test?.status, "unsupported", `${name} with ${client}: ${test?.reason}`)
          }
        })
      ),
    { timeout: 300_000 }
  )

  it.live.skipIf(!runIt)(
    "a tampered ALPN case fails, quoting the client's evidence; the pcap agrees with the client's protocol",
    () =>
      provide(
        Effect.gen(function* () {
          const tampered = { implementation: "tls-openssl", parameters: { alpn: "http/1.1" } }
          const { outcome, statuses } = yield* runCells(
            { alpn: [[tampered], ["tls-openssl"]], tls13: [["tls-openssl"], ["tls-openssl"]] },
            true
          )
          const alpn = statuses.get(cell("alpn", "tls-openssl", "tls-openssl"))
          assert.strictEqual(alpn?.status, "failed")
          assert.include(alpn?.reason ?? "", "does not match /(?m)^tls\\.alpn=h2$/")
          // OpenSSL's server refuses an ALPN it does not speak with the fatal alert RFC 7301 asks for (120).
          assert.include(alpn?.reason ?? "", "alert no application protocol")
          assert.strictEqual(statuses.get(cell("tls13", "tls-openssl", "tls-openssl"))?.status, "passed")
          // The capture is evidence of its own: the ServerHello on the wire selected TLS 1.3 (0x0304).
          const pcap = `${outcome.runDir}/tests/tls13-tls-openssl-server-tls-openssl-client/attempt-1/server/server.pcap`
          const versions = execFileSync(
            "tshark",
            [
              "-r",
              pcap,
              "-Y",
              "tls.handshake.type == 2",
              "-T",
              "fields",
              "-e",
              "tls.handshake.extensions.supported_version"
            ],
            { encoding: "utf8", timeout: 60_000 }
          )
          assert.include(versions, "0x0304")
        })
      ),
    { timeout: 300_000 }
  )

  it.live.skipIf(!runIt)(
    "a sixth stack is one plugin file; one whose program is missing is unsupported in every cell, saying so",
    () =>
      provide(
        Effect.gen(function* () {
          const tlsStack = new URL("../../plugins/src/tls/TlsStack.ts", import.meta.url).pathname
          const plugin = `import * as TlsStack from ${JSON.stringify(tlsStack)}
export default TlsStack.make({
  name: "tls-absent",
  description: "a stack whose program this machine lacks",
  programs: ["testbed-no-such-tls-program"],
  server: "exec testbed-no-such-tls-program",
  client: "exec testbed-no-such-tls-program"
})
`
          const { outcome, statuses } = yield* runCells(
            {
              tls13: [
                ["tls-absent", "tls-openssl"],
                ["tls-absent", "tls-openssl"]
              ]
            },
            false,
            { "absent.ts": plugin }
          )
          for (const [server, client] of [
            ["tls-absent", "tls-openssl"],
            ["tls-openssl", "tls-absent"]
          ]) {
            assert.strictEqual(statuses.get(cell("tls13", server!, client!))?.status, "unsupported")
          }
          assert.strictEqual(statuses.get(cell("tls13", "tls-openssl", "tls-openssl"))?.status, "passed")
          const stderr = readFileSync(
            `${outcome.runDir}/tests/tls13-tls-openssl-server-tls-absent-client/attempt-1/client/stderr.log`,
            "utf8"
          )
          assert.include(stderr, "testbed-no-such-tls-program is not installed on this machine")
        })
      ),
    { timeout: 300_000 }
  )
})
