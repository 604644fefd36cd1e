import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Effect, FileSystem, Stream } from "effect"
import { PluginRegistry, ServicePlugin } from "../src/index.ts"

const fixtures = decodeURIComponent(new URL("../../../fixtures/plugins/", import.meta.url).pathname)

describe("PluginRegistry", () => {
  it.effect("ships the built-in service plugins and the localhost environment", () =>
    Effect.gen(function* () {
      const registry = yield* PluginRegistry.load()
      assert.deepStrictEqual(
        registry.services.map((s) => s.plugin.name),
        ["node-echo", "openssl", "gnutls", "exec", "tls-openssl", "tls-gnutls", "tls-botan", "tls-go", "tls-java"]
      )
      assert.deepStrictEqual(
        registry.environments.map((e) => e.plugin.name),
        ["localhost"]
      )
      const openssl = yield* registry.service("openssl")
      assert.deepStrictEqual(Object.keys(openssl.roles), ["server", "client"])
      const missing = yield* Effect.flip(registry.service("quiche"))
      assert.strictEqual(missing._tag, "PluginNotFound")
      assert.include(missing.message, "known: node-echo, openssl, gnutls, exec")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("loads plugins from a directory the user named, and says so on the bus", () =>
    Effect.gen(function* () {
      const bus = yield* EventBus.EventBus
      const events = yield* bus.subscribe
      const registry = yield* PluginRegistry.load({ directories: [`${fixtures}busybox`] })
      const busybox = registry.findService("busybox-http")
      assert.isDefined(busybox)
      assert.strictEqual(busybox?.type, "iut")
      assert.strictEqual(
        registry.services.find((s) => s.plugin.name === "busybox-http")?.source,
        `${fixtures}busybox/index.ts`
      )
      const loaded = yield* Stream.runHead(events)
      assert.strictEqual(loaded._tag, "Some")
      if (loaded._tag === "Some") {
        assert.strictEqual(loaded.value.type, "plugin.loaded")
        assert.deepStrictEqual(loaded.value.data, {
          name: "busybox-http",
          kind: "service",
          source: `${fixtures}busybox/index.ts`
        })
      }
    }).pipe(Effect.scoped, Effect.provide([NodeServices.layer, EventBus.EventBus.layer]))
  )

  it.effect("a bad plugin is an error naming the file and the field", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(PluginRegistry.load({ directories: [`${fixtures}bad`] }))
      assert.strictEqual(error._tag, "PluginInvalid")
      if (error._tag === "PluginInvalid") {
        assert.strictEqual(error.source, `${fixtures}bad/broken.ts`)
        assert.strictEqual(error.field, "default.type")
        assert.include(error.message, "broken.ts: default.type")
      }
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a name already taken is refused with where the first came from", () =>
    Effect.gen(function* () {
      const clash = ServicePlugin.make({ name: "openssl", type: "iut", protocols: [], versions: [], roles: {} })
      const error = yield* Effect.flip(PluginRegistry.load({ services: [clash] }))
      assert.strictEqual(error._tag, "PluginInvalid")
      assert.include(error.message, "already registered (from builtin)")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  // A runner's own plugins (`--plugins`) under an experiment that brings its own copy of one: the experiment's copy
  // is used and the runner's is left out; they clashed, and the runner refused every attempt of the experiment.
  it.effect("a host's plugin whose name the experiment's plugins took is left out; its others load", () =>
    Effect.gen(function* () {
      const registry = yield* PluginRegistry.load({
        directories: [`${fixtures}busybox`],
        hostDirectories: [`${fixtures}busybox-sh`, `${fixtures}busybox`]
      })
      const sources = registry.services.filter((s) => s.source !== "builtin").map((s) => [s.plugin.name, s.source])
      assert.deepStrictEqual(sources, [
        ["busybox-http", `${fixtures}busybox/index.ts`],
        ["busybox-sh", `${fixtures}busybox-sh/index.ts`]
      ])
      // Among the experiment's own directories a clash is still refused.
      const error = yield* Effect.flip(
        PluginRegistry.load({ directories: [`${fixtures}busybox`, `${fixtures}busybox`] })
      )
      assert.include(error.message, 'a service plugin named "busybox-http" is already registered')
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a missing directory or package is a clear error", () =>
    Effect.gen(function* () {
      const noDir = yield* Effect.flip(PluginRegistry.load({ directories: [`${fixtures}nope`] }))
      assert.include(noDir.message, "cannot read plugin directory")
      const noPackage = yield* Effect.flip(PluginRegistry.load({ packages: ["@testbed/no-such-plugin"] }))
      assert.include(noPackage.message, "npm:@testbed/no-such-plugin")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.live("a module whose top level never finishes loading fails with a deadline instead of hanging", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-plugins-" })
      // A top-level await on something that never comes.
      yield* fs.writeFileString(`${dir}/stuck.mjs`, "await new Promise(() => {})\n")
      const error = yield* Effect.flip(PluginRegistry.load({ directories: [dir], importTimeout: "300 millis" }))
      assert.strictEqual(error._tag, "PluginInvalid")
      assert.include(error.message, `${dir}/stuck.mjs`)
      assert.include(error.message, "did not finish loading within 300ms")
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )
})
