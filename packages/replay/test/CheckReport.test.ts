import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import { sha1 } from "../src/BlobStore.ts"
import * as CheckReport from "../src/CheckReport.ts"
import * as ScriptLoader from "../src/ScriptLoader.ts"
import { loadLayer, platform, tempDir, writeFiles } from "./support.ts"

describe("CheckReport", () => {
  it.live("says which blobs were verified and which were accepted unverified (legacy CRC names)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const fs = yield* FileSystem.FileSystem
      const content = Buffer.alloc(5000, 7)
      const name = sha1(content)
      yield* fs.makeDirectory(Path.join(dir, "blobs"))
      yield* fs.writeFile(Path.join(dir, "blobs", `${name}.gz`), Zlib.gzipSync(content))
      yield* fs.writeFile(Path.join(dir, "blobs", "session_c123456"), Buffer.from("legacy bytes"))
      yield* writeFiles(dir, {
        "s.json": {
          recorded_script: {
            type: "compound",
            scripts: [
              { type: "script", command: "a", response_blob: name },
              { type: "script", command: "b", response_blob: "session_c123456" }
            ]
          }
        }
      })
      const scripts = yield* ScriptLoader.loadAll({ file: Path.join(dir, "s.json") }).pipe(
        Effect.provide(loadLayer(dir))
      )
      assert.deepStrictEqual(scripts[0]!.blobs, [
        { name, bytes: 5000, verified: true },
        { name: "session_c123456", bytes: 12, verified: false }
      ])
      const text = CheckReport.lines("s.json", scripts).join("\n")
      assert.include(text, `blob ${name}: 5000 bytes, verified (sha1 of the content)`)
      assert.include(text, "blob session_c123456: 12 bytes, accepted unverified (legacy CRC name")
      assert.include(text, "blobs: 1 verified, 1 accepted unverified")
      assert.include(text, "5012 byte(s) sent")
    }).pipe(Effect.provide(platform))
  )
})
