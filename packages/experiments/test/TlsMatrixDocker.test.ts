// Integration: a subset of the TLS interop matrix (fixtures/experiments/tls-matrix-docker.yaml) in the docker
// environment on the real engine — images built offline before the tests, a stage (server and client containers
// on a private network) per cell, checked from the same evidence lines as the localhost matrix.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as Yaml from "yaml"
import { Experiment } from "../src/index.ts"
import { docker, hasDocker } from "./docker.ts"
import { fixtures, hasProgram, provide, readEvents, readSummary } from "./support.ts"

const programs = ["openssl", "gnutls-serv", "gnutls-cli", "busybox", "go"]
// Locally without an engine or the stacks the test skips; in CI (CI=true) it runs and fails, saying what is missing.
const runIt = (hasDocker && programs.every(hasProgram)) || process.env.CI !== undefined

interface Matrix {
  readonly name: string
  servers: ReadonlyArray<string>
  clients: ReadonlyArray<string>
}
const fixture = Yaml.parse(readFileSync(`${fixtures}tls-matrix-docker.yaml`, "utf8")) as {
  matrices: Array<Matrix>
  [key: string]: unknown
}

const cell = (name: string, server: string, client: string) => `${name} [${server} server, ${client} client]`

/** Containers and networks of the run's stages still on the engine (each attempt records its stage in stage.json). */
const leftovers = (runDir: string): ReadonlyArray<string> =>
  readdirSync(`${runDir}/tests`).flatMap((test) => {
    const file = `${runDir}/tests/${test}/attempt-1/stage.json`
    if (!existsSync(file)) return []
    const stage = (JSON.parse(readFileSync(file, "utf8")) as { name: string }).name
    return [
      ...docker(["ps", "-a", "--filter", `label=testbed.stage=${stage}`, "--format", "{{.Names}}"]).split("\n"),
      ...docker(["network", "ls", "--filter", `label=testbed.stage=${stage}`, "--format", "{{.Name}}"]).split("\n")
    ].filter((line) => line !== "")
  })

describe("TLS interop matrix in the docker environment", () => {
  it.live.skipIf(!runIt)(
    "OpenSSL × GnuTLS × Go in containers from images built before the tests (Go's peer built here first); Java says why not",
    () =>
      provide(
        Effect.gen(function* () {
          assert.deepStrictEqual(
            programs.filter((program) => !hasProgram(program)),
            [],
            "programs missing"
          )
          const fs = yield* FileSystem.FileSystem
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-tls-docker-" })
          const stacks = ["tls-openssl", "tls-gnutls"]
          const pick = (name: string, servers: ReadonlyArray<string>, clients: ReadonlyArray<string>) => {
            const matrix = fixture.matrices.find((m) => m.name === name)
            assert.isDefined(matrix, `no case ${name} in tls-matrix-docker.yaml`)
            return { ...matrix, servers, clients }
          }
          const matrices = [
            pick("tls13", stacks, stacks),
            pick("alpn", ["tls-gnutls"], ["tls-openssl"]),
            // Go's peer is built on this machine into its image: one cell as server, one as client.
            { ...pick("tls13", ["tls-go"], ["tls-openssl"]), name: "tls13-go-server" },
            { ...pick("tls13", ["tls-openssl"], ["tls-go"]), name: "tls13-go-client" },
            // Java only as a client of OpenSSL: its cell is the `unsupported` one.
            { ...pick("tls13", ["tls-openssl"], ["tls-java"]), name: "tls13-java" }
          ]
          const file = `${dir}/tls-matrix-docker.yaml`
          writeFileSync(file, Yaml.stringify({ ...fixture, test_timeout: "4 minutes", matrices }))
          const outcome = yield* Experiment.run(file, { outputDir: dir, progress: "none", concurrency: 2 })
          const statuses = new Map((outcome.result?.tests ?? []).map((test) => [test.name, test]))
          for (const server of stacks) {
            for (const client of stacks) {
              const test = statuses.get(cell("tls13", server, client))
              assert.strictEqual(test?.status, "passed", `${server} × ${client}: ${test?.reason}`)
            }
          }
          assert.strictEqual(statuses.get(cell("alpn", "tls-gnutls", "tls-openssl"))?.status, "passed")
          for (const [name, server, client] of [
            ["tls13-go-server", "tls-go", "tls-openssl"],
            ["tls13-go-client", "tls-openssl", "tls-go"]
          ] as const) {
            const test = statuses.get(cell(name, server, client))
            assert.strictEqual(test?.status, "passed", `${server} × ${client}: ${test?.reason}`)
          }
          const goEvidence = readFileSync(
            `${outcome.runDir}/tests/tls13-go-client-tls-openssl-server-tls-go-client/attempt-1/client/stdout.log`,
            "utf8"
          )
          assert.match(goEvidence, /^tls\.protocol=TLSv1\.3$/m)
          const java = statuses.get(cell("tls13-java", "tls-openssl", "tls-java"))
          assert.strictEqual(java?.status, "unsupported", java?.reason)
          const javaStderr = readFileSync(
            `${outcome.runDir}/tests/tls13-java-tls-openssl-server-tls-java-client/attempt-1/client/stderr.log`,
            "utf8"
          )
          assert.include(javaStderr, "the docker image has no JDK")

          const events = readEvents(outcome.runDir)
          // Every service ran in a container (docker exec), never on this machine.
          const runners = events.flatMap((event) => (event.type === "command.started" ? [event.data.runner] : []))
          assert.isAbove(runners.length, 0)
          for (const runner of runners) assert.match(String(runner), /^docker:[0-9a-f]{64}$/)
          // The evidence lines came out of the GnuTLS client's container.
          const evidence = readFileSync(
            `${outcome.runDir}/tests/tls13-tls-openssl-server-tls-gnutls-client/attempt-1/client/stdout.log`,
            "utf8"
          )
          assert.match(evidence, /^tls\.protocol=TLSv1\.3$/m)
          // Images are ready before the first test starts: their time is apart from the tests'.
          const ready = events.flatMap((event) => (event.type === "environment.image_ready" ? [event] : []))
          assert.sameMembers(
            ready.map((event) => event.type === "environment.image_ready" && event.data.implementation),
            ["tls-openssl", "tls-gnutls", "tls-go", "tls-java"]
          )
          const firstTest = events.findIndex((event) => event.type === "test.started")
          for (const event of ready) assert.isBelow(events.indexOf(event), firstTest)
          const built = ready.filter((event) => event.type === "environment.image_ready" && event.data.built)
          assert.strictEqual(readSummary(outcome.runDir).resources.docker_images_built, built.length)
          assert.deepStrictEqual(leftovers(outcome.runDir), [])
        })
      ),
    { timeout: 600_000 }
  )
})
