import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Stream } from "effect"
import { OutputCapture, OutputFile } from "../src/index.ts"

const encoder = new TextEncoder()

describe("OutputFile", () => {
  it.effect("40 MB then END-MARK: the file keeps its head and its latest tail, and says how much it left out", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-outputfile-" })
      const log = `${dir}/stdout.log`
      const limits = { head: 4096, tail: 64 * 1024 }
      const chunk = encoder.encode(`${"x".repeat(1023)}\n`.repeat(64))
      const chunks = 640
      const output = Stream.make(encoder.encode("FIRST LINE\n")).pipe(
        Stream.concat(Stream.range(1, chunks).pipe(Stream.map(() => chunk))),
        Stream.concat(Stream.make(encoder.encode("END-MARK\n")))
      )
      yield* OutputFile.write(log, output, limits)
      const total = 11 + chunks * chunk.length + 9
      const text = yield* fs.readFileString(log)
      assert.isAtMost(text.length, OutputFile.maxBytes(limits))
      assert.isTrue(text.startsWith("FIRST LINE\n"))
      assert.isTrue(text.endsWith("END-MARK\n"))
      const omitted = Number(/\[testbed: (\d+) bytes of output left out here\]/.exec(text)?.[1])
      // Head, marker and tail account for every byte written.
      assert.strictEqual(text.length - OutputCapture.cutMarker(omitted).length + omitted, total)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("a small output is written as it came", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-outputfile-" })
      yield* OutputFile.write(`${dir}/out.log`, Stream.make(encoder.encode("a\n"), encoder.encode("b\n")))
      assert.strictEqual(yield* fs.readFileString(`${dir}/out.log`), "a\nb\n")
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("a full disk is WriteFailed naming the file and ENOSPC", () =>
    Effect.gen(function* () {
      // /dev/full: every write fails as on a full disk.
      const error = yield* Effect.flip(OutputFile.write("/dev/full", Stream.make(encoder.encode("x\n"))))
      assert.strictEqual(error._tag, "WriteFailed")
      assert.strictEqual(error.code, "ENOSPC")
      assert.strictEqual(error.message, "cannot write /dev/full: no space left on device (ENOSPC)")
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
