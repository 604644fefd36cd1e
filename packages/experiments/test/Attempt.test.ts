// The attempt's record has one writer: the operations of internal/attempt.ts. Deployment through them gives a server
// its port and the attempt its variables; a direct write to the record does not compile (checked by typecheck,
// through the `@ts-expect-error` lines below: each fails the typecheck if its write compiles).
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventBus, type WriteFailed } from "@testbed/events"
import { FakeEnvironment } from "@testbed/plugins"
import { Deferred, Effect, FileSystem, Layer } from "effect"
import { Experiment } from "../src/index.ts"
import { type Abort, makeAttempt, setEnvironment } from "../src/internal/attempt.ts"
import * as Services from "../src/internal/services.ts"
import { fixtures } from "./support.ts"

describe("the attempt's record", () => {
  it.effect("deployment gives the server its port and the attempt its variables; nothing else writes them", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-attempt-" })
      const prepared = yield* Experiment.prepare(`${fixtures}quickstart.yaml`)
      const test = prepared.plan.tests.find((t) => t.name === "echo round trip")!
      const attempt = makeAttempt({
        test,
        number: 1,
        dir,
        runDir: dir,
        variables: { test: test.name, node: "node", assets: "/assets" },
        crashed: yield* Deferred.make<Abort>(),
        fatal: yield* Deferred.make<WriteFailed.WriteFailed>()
      })
      const fake = FakeEnvironment.make({ script: () => ({}), firstPort: 31000 })
      setEnvironment(attempt, yield* fake.plugin.setup({ test: test.name, outputDir: dir }))
      for (const plan of test.services) yield* Services.prepare(attempt, plan)
      yield* Services.deployAll(attempt)

      const server = attempt.services.get("server")!
      const client = attempt.services.get("client")!
      assert.strictEqual(server.port, 31000)
      assert.isUndefined(client.port)
      assert.deepInclude(attempt.variables, {
        test: "echo round trip",
        "server.port": 31000,
        "server.host": "127.0.0.1",
        "server.dir": server.dir
      })
      assert.isUndefined(attempt.variables["client.port"])
      assert.deepInclude(client.variables, { target_port: 31000, target_host: "127.0.0.1", service: "client" })
      assert.isDefined(client.command)
      assert.isUndefined(server.process)
      assert.isUndefined(server.exit)

      // Never called: what the compiler refuses (typecheck fails if any of these writes compiles).
      const refused = () => {
        // @ts-expect-error: the service record is read-only outside internal/attempt.ts
        server.port = 1
        // @ts-expect-error: likewise a service's exit
        server.exit = undefined
        // @ts-expect-error: likewise the attempt's variables
        attempt.variables.extra = "x"
      }
      assert.isFunction(refused)
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(EventBus.EventBus.layer, NodeServices.layer)))
  )
})
