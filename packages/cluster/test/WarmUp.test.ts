// A runner's warm-up (internal/warmUp.ts): one real attempt of `exec true` through the runner's own steps, run
// before it serves, that leaves nothing behind; and a warm-up that cannot run is reported, not fatal. Its Postgres
// client points at a port nothing listens on: the warm-up's request has no bundle, so it must never connect.
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Redacted, Ref, Semaphore } from "effect"
import type * as AttemptRunner from "../src/AttemptRunner.ts"
import * as BundleCache from "../src/BundleCache.ts"
import * as ClusterLayers from "../src/ClusterLayers.ts"
import * as Envelope from "../src/Envelope.ts"
import * as Plans from "../src/internal/plans.ts"
import * as WarmUp from "../src/internal/warmUp.ts"

const identity = (workdir: string) =>
  Effect.gen(function* () {
    return {
      name: "runner-w",
      host: "host-w",
      workdir,
      pluginDirectories: [],
      keys: Envelope.keys(Redacted.make("the-cluster-secret-w")),
      slots: yield* Semaphore.make(1),
      running: yield* Ref.make<ReadonlyMap<string, string>>(new Map()),
      maxArtifactBytes: 1024 * 1024,
      plans: Plans.make(),
      bundles: BundleCache.make({ workdir })
    } satisfies AttemptRunner.RunnerIdentity
  })

const noDatabase = ClusterLayers.postgres(Redacted.make("postgres://nobody@127.0.0.1:1/none"))

describe("runner warm-up", () => {
  it.live("runs one attempt of exec true to its end and leaves the workdir as it was", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const workdir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-warm-up-" })
      const runner = yield* identity(workdir)
      const status = yield* WarmUp.run(runner, [])
      assert.strictEqual(status, "passed")
      assert.deepStrictEqual(yield* fs.readDirectory(workdir), [])
      assert.strictEqual((yield* Ref.get(runner.running)).size, 0)
    }).pipe(Effect.scoped, Effect.provide([NodeServices.layer, noDatabase]))
  )

  it.live("a warm-up that cannot run says so and does not fail the runner", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-warm-up-" })
      // A file where the workdir should be: nothing can be written under it.
      const workdir = join(dir, "not-a-directory")
      writeFileSync(workdir, "")
      const status = yield* WarmUp.run(yield* identity(workdir), [])
      assert.match(status, /^failed \(/)
    }).pipe(Effect.scoped, Effect.provide([NodeServices.layer, noDatabase]))
  )
})
