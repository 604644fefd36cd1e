// The default readiness of a server on this machine looks at the kernel's socket table instead of connecting: a
// one-shot server (socat without `fork`) keeps its only connection for the real client.
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { Experiment } from "../src/index.ts"
import { listening } from "../src/internal/probe.ts"
import { hasProgram, provide, runFixture } from "./support.ts"

describe("readiness", () => {
  it.live.skipIf(!hasProgram("socat") && process.env.CI === undefined)(
    "a one-shot socat server is ready without its only connection being taken: the echo client passes",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("cases/one-shot-server.yaml")
          const [test] = outcome.result!.tests
          assert.strictEqual(test?.status, "passed", test?.reason)
        })
      ),
    120_000
  )

  it.live("the socket table knows a listening port, and one nobody listens on", () =>
    provide(
      Effect.gen(function* () {
        const server = Net.createServer()
        yield* Effect.callback<void>((resume) => {
          server.listen(0, "127.0.0.1", () => resume(Effect.void))
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => server.close()))
        const port = (server.address() as Net.AddressInfo).port
        assert.isTrue(yield* listening(port))
        server.close()
        yield* Effect.sleep("50 millis")
        assert.isFalse(yield* listening(port))
      })
    )
  )

  // The crash watcher and the readiness check both see such an exit; which one reported it used to depend on timing
  // ("ended on its own" or "ended before it was ready"). Many real processes, so that either order gets its chance.
  it.live(
    "a server that exits during its readiness check is always reported as ended before it was ready, with its code",
    () =>
      provide(
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-readiness-" })
          const readiness = ["{ kind: port }", '{ kind: log, pattern: "^listening$" }']
          const names = Array.from({ length: 24 }, (_, i) => `exits ${i}`)
          yield* fs.writeFileString(
            `${dir}/exits.yaml`,
            [
              "name: exits before ready",
              "concurrency: 4",
              "tests:",
              ...names.flatMap((name, i) => [
                `  - name: ${name}`,
                "    services:",
                "      server:",
                `        { implementation: exec, role: server, readiness: ${readiness[i % 2]},`,
                "          parameters: { program: sh, args: ['-c', 'exit 2'] } }"
              ]),
              ""
            ].join("\n")
          )
          const outcome = yield* Experiment.run(`${dir}/exits.yaml`, { outputDir: `${dir}/out`, progress: "none" })
          const reasons = outcome.result!.tests.map((test) => [test.name, test.status, test.reason])
          assert.deepStrictEqual(
            reasons,
            names.map((name) => [name, "failed", `${name}/server ended before it was ready: exit code 2`])
          )
        })
      ),
    120_000
  )
})
