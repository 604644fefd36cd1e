import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer } from "effect"
import { BlobStore } from "../src/BlobStore.ts"
import * as ScriptWriter from "../src/ScriptWriter.ts"
import { inMemory, loadIn, platform, tempDir } from "./support.ts"

const text = (n: number, c = "a") => Buffer.from(c.repeat(n), "latin1")
const binary = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 200) % 256))

// Sizes on both sides of every threshold of the writer's rules (162 chars, 81 bytes, 4096 bytes).
const responses = [
  text(0),
  text(1),
  text(162),
  text(163),
  text(4096, "~"),
  text(4097),
  binary(1),
  binary(81),
  binary(82),
  binary(5000),
  Buffer.from([0])
]

describe("ScriptWriter", () => {
  it.live("what it writes loads back byte for byte, one connection or several", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const fs = yield* FileSystem.FileSystem
      const blobs = BlobStore.layer({ dir: Path.join(dir, "blobs") }).pipe(Layer.provide(platform))
      const exchanges = responses.map((response, i) => ({
        command: i % 3 === 0 ? Buffer.from([0xff, i]) : Buffer.from(`cmd ${i} é\n`),
        response
      }))
      const base = Path.join(dir, "out")
      const one = yield* ScriptWriter.write(base, [exchanges]).pipe(Effect.provide(blobs))
      const two = yield* ScriptWriter.write(base, [exchanges.slice(0, 3), exchanges.slice(3)]).pipe(
        Effect.provide(blobs)
      )
      assert.deepStrictEqual([Path.basename(one), Path.basename(two)], ["out-1.json", "out-2.json"])
      const json = JSON.parse(yield* fs.readFileString(one))
      const fields = (json.recorded_script.scripts as Array<Record<string, unknown>>).map((s) => Object.keys(s)[2])
      assert.deepStrictEqual(fields, [
        "response",
        "response",
        "response",
        "responses",
        "responses",
        "response_blob",
        "response_hex",
        "response_hex",
        "response_blob",
        "response_blob",
        "response_hex"
      ])
      const loaded = yield* loadIn(dir, "out-1.json")
      const steps = loaded.plan._tag === "Single" ? loaded.plan.steps : []
      assert.strictEqual(steps.length, exchanges.length)
      steps.forEach((step, i) => {
        assert.isTrue(step._tag === "Exchange")
        if (step._tag !== "Exchange") return
        assert.isTrue(Buffer.from(step.command).equals(exchanges[i]!.command), `command ${i}`)
        assert.isTrue(Buffer.from(inMemory(step.response)).equals(exchanges[i]!.response), `response ${i}`)
      })
      const multi = yield* loadIn(dir, "out-2.json")
      assert.deepStrictEqual(multi.plan._tag === "Multi" ? multi.plan.connections.map((c) => c.length) : [], [3, 8])
    }).pipe(Effect.provide(platform))
  )
})
