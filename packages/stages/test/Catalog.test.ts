import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import * as Catalog from "../src/Catalog.ts"
import { fixtures } from "./paths.ts"

const catalog = join(fixtures, "stages")

describe("Catalog", () => {
  it.effect("lists the fixture stages with their kind", () =>
    Effect.gen(function* () {
      const entries = yield* Catalog.list(catalog)
      assert.deepStrictEqual(
        entries.map((e) => [e.name, e.kind]),
        [
          ["course-lab", "stage"],
          ["routing-lab", "stage"],
          ["routing-lab-arp-off", "stage"],
          ["routing-lab-compose", "compose"],
          ["pyroute-stage1", "compose"]
        ].sort()
      )
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("loads by name, by folder and by file", () =>
    Effect.gen(function* () {
      const byName = yield* Catalog.load("routing-lab", catalog)
      const byFolder = yield* Catalog.load(join(catalog, "routing-lab-compose"), "/nowhere")
      const byFile = yield* Catalog.load(join(catalog, "routing-lab", "stage.yaml"), "/nowhere")
      assert.strictEqual(byName.stage.name, "routing-lab")
      assert.strictEqual(byFolder.stage.name, "routing-lab")
      assert.strictEqual(byFile.baseDir, join(catalog, "routing-lab"))
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("names that try to leave the catalog are refused; unknown names are not found", () =>
    Effect.gen(function* () {
      // A path that exists is loaded as a path: the name must not exist beside the working directory.
      const escaping = yield* Effect.flip(Catalog.load(`../testbed-no-such-stage-${process.pid}`, catalog))
      assert.strictEqual(escaping._tag, "InvalidStageName")
      const nested = yield* Effect.flip(Catalog.load("a/b", catalog))
      assert.strictEqual(nested._tag, "InvalidStageName")
      const missing = yield* Effect.flip(Catalog.load("no-such-stage", catalog))
      assert.strictEqual(missing._tag, "StageNotFound")
      assert.deepStrictEqual(yield* Catalog.list(join(catalog, "missing")), [])
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
