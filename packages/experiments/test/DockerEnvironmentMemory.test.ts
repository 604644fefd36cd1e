// The docker environment's logic — a stage per test, a node and an address per service, commands exec'd into their
// node, the stage down afterwards — on @testbed/stages' in-memory engine (`Docker.layerMemory`) and TestClock: no
// container, no network. DockerEnvironment.test.ts runs the same kind of test on the real engine (integration).
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Docker } from "@testbed/stages"
import { Effect, FileSystem, Layer } from "effect"
import { Experiment } from "../src/index.ts"
import { runCollecting } from "./fake.ts"

const busybox = decodeURIComponent(new URL("../../../fixtures/plugins/busybox", import.meta.url).pathname)
const image = "testbed/busybox:fixture"

// The busybox pair with the server's readiness turned off: the in-memory engine has no port to probe.
const experiment = [
  "name: docker-in-memory",
  "environment: docker",
  "test_timeout: 1 minute",
  "paths:",
  `  plugins: ${JSON.stringify(busybox)}`,
  "tests:",
  "  - name: fetch in a stage",
  "    services:",
  "      web: { implementation: busybox-http, role: server, readiness: { kind: none } }",
  "      fetch: { implementation: busybox-http, role: client, target: web }",
  "    assertions:",
  "      - { type: output_matches, service: fetch, pattern: served from memory }",
  ""
].join("\n")

interface Exec {
  readonly container: string
  readonly cmd: ReadonlyArray<string>
}

describe("the docker environment on the in-memory engine (TestClock)", () => {
  it.effect("each service runs in its node at its own address; the stage is gone afterwards", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-docker-memory-" })
      yield* fs.writeFileString(`${dir}/docker.yaml`, experiment)
      const prepared = yield* Experiment.prepare(`${dir}/docker.yaml`)
      const execs: Array<Exec> = []
      const engine = Docker.Docker.layerMemory({
        images: [image],
        exec: (container, cmd) => {
          execs.push({ container, cmd })
          // The server (httpd) runs until stopped; the client prints a page only this engine serves.
          return cmd.includes("wget")
            ? { stdout: "served from memory\n", duration: "100 millis" }
            : { duration: "1 hour", exitCode: 137 }
        }
      })
      const { ran, left, networks } = yield* Effect.gen(function* () {
        const ran = yield* Effect.scoped(runCollecting(prepared.plan, prepared.registry))
        const docker = yield* Docker.Docker
        return { ran, left: yield* docker.listContainers({}), networks: yield* docker.listNetworks({}) }
      }).pipe(Effect.provide(engine))
      const [test] = ran.result.tests
      assert.strictEqual(test?.status, "passed", test?.reason)
      // Both services were exec'd into containers of their own; the client was given the server's node address.
      const server = execs.find((exec) => exec.cmd.join(" ").includes("httpd"))
      const client = execs.find((exec) => exec.cmd.includes("wget"))
      assert.isDefined(server)
      assert.isDefined(client)
      assert.match(server!.container, /^exp-[0-9a-f]{8}-web-/)
      assert.match(client!.container, /^exp-[0-9a-f]{8}-fetch-/)
      const url = client!.cmd.find((arg) => arg.startsWith("http://")) ?? ""
      assert.match(url, /^http:\/\/10\.2\d\d\.\d+\.10:\d+\/index\.html$/)
      const types = ran.events.map((event) => event.type)
      for (const type of ["stage.up_started", "stage.up", "stage.down"]) assert.include(types, type)
      // Down removed what up created, although the server never ended on its own.
      assert.deepStrictEqual(left, [])
      assert.deepStrictEqual(networks, [])
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(EventBus.EventBus.layer, NodeServices.layer)))
  )
})
