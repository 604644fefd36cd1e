// A remote blob cache that accepts the connection and never answers cannot hang a replay: each fetch has a
// deadline, after which the blob counts as not found there.
import * as Net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { make } from "../src/BlobStore.ts"
import { platform, tempDir } from "./support.ts"

/** A TCP server that accepts every connection and says nothing, ever. */
const silentServer = Effect.acquireRelease(
  Effect.callback<{ readonly server: Net.Server; readonly sockets: Set<Net.Socket> }>((resume) => {
    const sockets = new Set<Net.Socket>()
    const server = Net.createServer((socket) => {
      sockets.add(socket)
      socket.on("error", () => {})
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
  }),
  ({ server, sockets }) =>
    Effect.sync(() => {
      for (const socket of sockets) socket.destroy()
      server.close()
    })
).pipe(Effect.map(({ server }) => `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}/blobs`))

describe("BlobStore remote cache deadline", () => {
  it.live("a cache URL that never answers ends in BlobNotFound after the deadline, not a hang", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const remote = yield* silentServer
      const blobs = yield* make({ dir, remote, remoteTimeout: "300 millis" })
      const error = yield* Effect.flip(blobs.get("0123456789abcdef0123456789abcdef01234567"))
      assert.strictEqual(error._tag, "BlobNotFound")
      assert.include(error.message, remote)
    }).pipe(Effect.scoped, Effect.provide(platform))
  )
})
