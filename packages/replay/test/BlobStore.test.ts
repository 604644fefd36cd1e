import * as Http from "node:http"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, FileSystem } from "effect"
import { BlobStore, make, sha1 } from "../src/BlobStore.ts"
import { platform, tempDir } from "./support.ts"

const store = (dir: string, remote?: string) => make({ dir, remote })

const errorTag = <A, E extends { _tag: string }>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(effect), (exit) =>
    Exit.isFailure(exit)
      ? (exit.cause.reasons.find((r) => r._tag === "Fail") as { error: E } | undefined)?.error._tag
      : "success"
  )

/** A static file server on 127.0.0.1 for the remote cache, closed with the scope. */
const httpServer = (root: string) =>
  Effect.acquireRelease(
    Effect.callback<{ server: Http.Server; url: string; requests: Array<string> }>((resume) => {
      const requests: Array<string> = []
      const server = Http.createServer((req, res) => {
        requests.push(req.url ?? "")
        import("node:fs").then((fs) =>
          fs.readFile(Path.join(root, Path.basename(req.url ?? "")), (error, data) => {
            if (error) {
              res.writeHead(404).end()
            } else res.writeHead(200).end(data)
          })
        )
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as { port: number }).port
        resume(Effect.succeed({ server, url: `http://127.0.0.1:${port}/blobs`, requests }))
      })
    }),
    ({ server }) => Effect.sync(() => server.close())
  )

describe("BlobStore", () => {
  it.live("puts blobs as <sha1>.gz atomically, skips existing ones, and reads them back verified", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const fs = yield* FileSystem.FileSystem
      const blobs = yield* store(Path.join(dir, "blobs"))
      const bytes = new Uint8Array([0, 1, 2, 255, 10])
      const name = yield* blobs.put(bytes)
      assert.strictEqual(name, sha1(bytes))
      const file = Path.join(dir, "blobs", `${name}.gz`)
      assert.deepStrictEqual(new Uint8Array(Zlib.gunzipSync(yield* fs.readFile(file))), bytes)
      const before = (yield* fs.stat(file)).mtime
      yield* blobs.put(bytes)
      assert.deepStrictEqual((yield* fs.stat(file)).mtime, before)
      assert.deepStrictEqual(yield* fs.readDirectory(Path.join(dir, "blobs")), [`${name}.gz`])
      assert.deepStrictEqual(yield* blobs.get(name), bytes)
    }).pipe(Effect.provide(platform))
  )

  it.live(
    "a corrupted blob fails with BlobCorrupt; legacy _c names are accepted unverified; bad names are refused",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fs = yield* FileSystem.FileSystem
        const blobs = yield* store(dir)
        const name = sha1(Buffer.from("the real content"))
        yield* fs.writeFile(Path.join(dir, name), Buffer.from("tampered content"))
        assert.strictEqual(yield* errorTag(blobs.get(name)), "BlobCorrupt")
        const gzName = sha1(Buffer.from("other"))
        yield* fs.writeFile(Path.join(dir, `${gzName}.gz`), Buffer.from("not gzip at all"))
        assert.strictEqual(yield* errorTag(blobs.get(gzName)), "BlobCorrupt")
        yield* fs.writeFile(Path.join(dir, "old_c1234"), Buffer.from("whatever"))
        assert.strictEqual(Buffer.from(yield* blobs.get("old_c1234")).toString(), "whatever")
        assert.strictEqual(yield* errorTag(blobs.get("../etc/passwd")), "BlobNameInvalid")
        assert.strictEqual(yield* errorTag(blobs.get("b".repeat(40))), "BlobNotFound")
      }).pipe(Effect.provide(platform))
  )

  it.live("fetches missing blobs from a remote directory, verifies and keeps them locally", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const remote = Path.join(dir, "remote")
      const local = Path.join(dir, "local")
      const remoteStore = yield* store(remote)
      const name = yield* remoteStore.put(Buffer.from("from the cache"))
      const blobs = yield* store(local, remote)
      assert.strictEqual(Buffer.from(yield* blobs.get(name)).toString(), "from the cache")
      assert.isTrue(yield* blobs.hasLocal(name))
    }).pipe(Effect.provide(platform))
  )

  it.live("fetches from an http URL, and refuses a remote blob whose content does not match its name", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const fs = yield* FileSystem.FileSystem
      const served = Path.join(dir, "served")
      const good = yield* (yield* store(served)).put(Buffer.from("over http"))
      const badName = sha1(Buffer.from("expected"))
      yield* fs.writeFile(Path.join(served, `${badName}.gz`), Zlib.gzipSync(Buffer.from("swapped")))
      const http = yield* httpServer(served)
      const blobs = yield* store(Path.join(dir, "local"), http.url)
      assert.strictEqual(Buffer.from(yield* blobs.get(good)).toString(), "over http")
      assert.isTrue(yield* blobs.hasLocal(good))
      assert.include(http.requests, `/blobs/${good}.gz`)
      assert.strictEqual(yield* errorTag(blobs.get(badName)), "BlobCorrupt")
      assert.isFalse(yield* blobs.hasLocal(badName))
      const requestsBefore = http.requests.length
      yield* blobs.get(good)
      assert.strictEqual(http.requests.length, requestsBefore)
    }).pipe(Effect.provide(platform))
  )

  it.live("a remote cache that never answers fails after the idle timeout instead of hanging", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const silent = yield* Effect.acquireRelease(
        Effect.callback<Http.Server>((resume) => {
          const server = Http.createServer(() => {})
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.sync(() => {
            server.closeAllConnections()
            server.close()
          })
      )
      const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}/blobs`
      const blobs = yield* make({ dir, remote: url, remoteIdleTimeout: "300 millis" })
      const exit = yield* Effect.exit(blobs.open("d".repeat(40))).pipe(Effect.timeout("30 seconds"))
      const failure = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
      assert.strictEqual(failure?._tag === "Fail" ? failure.error._tag : "none", "BlobFetchFailed")
      assert.deepStrictEqual(yield* (yield* FileSystem.FileSystem).readDirectory(dir), [])
    }).pipe(Effect.provide(platform))
  )

  it.live("is a service with a layer", () =>
    Effect.gen(function* () {
      const blobs = yield* BlobStore
      assert.strictEqual(yield* errorTag(blobs.get("c".repeat(40))), "BlobNotFound")
    }).pipe(Effect.provide(BlobStore.layer({ dir: "/nonexistent-testbed-dir" })), Effect.provide(platform))
  )
})
