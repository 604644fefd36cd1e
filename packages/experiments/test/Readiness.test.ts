// The default readiness of a server on this machine looks at the kernel's socket table instead of connecting: a
// one-shot server (socat without `fork`) keeps its only connection for the real client.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { listening } from "../src/internal/probe.ts"
import { hasProgram, provide, runFixture } from "./support.ts"
import * as Net from "node:net"

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
})
