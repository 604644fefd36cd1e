// With Nagle off, the packets one turn of the event loop writes go out together (internal/noDelay.ts): the socket
// is corked at the turn's first write and uncorked after the turn, so a burst is one writev, not one segment per
// packet. Checked on a real loopback connection by the socket's own cork count and by what arrives, not by timing.
import { createConnection, createServer, type Socket } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { coalesceWrites } from "../src/internal/noDelay.ts"

/** A connected loopback pair: the client end (Nagle off, writes coalesced) and everything the server end reads. */
const pair = Effect.acquireRelease(
  Effect.callback<{ client: Socket; received: Array<Buffer>; close: () => void }>((resume) => {
    const received: Array<Buffer> = []
    const server = createServer((accepted) => accepted.on("data", (chunk) => received.push(chunk)))
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const client = createConnection({ host: "127.0.0.1", port, noDelay: true }, () => {
        coalesceWrites(client)
        resume(
          Effect.succeed({
            client,
            received,
            close: () => {
              client.destroy()
              server.close()
            }
          })
        )
      })
    })
  }),
  ({ close }) => Effect.sync(close)
)

describe("coalesced writes", () => {
  it.live("the writes of one turn are held until the turn ends, then all arrive", () =>
    Effect.gen(function* () {
      const { client, received } = yield* pair
      client.write("a")
      client.write("b")
      client.write("c")
      // Still in the same turn: all three wait in the socket's buffer (uncorked, each goes to the kernel at once).
      assert.strictEqual(client.writableCorked, 1)
      assert.strictEqual(client.writableLength, 3)
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      assert.strictEqual(client.writableCorked, 0)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50))).pipe(
        Effect.repeat({ until: () => Buffer.concat(received).toString() === "abc", times: 100 })
      )
      assert.strictEqual(Buffer.concat(received).toString(), "abc")
    }).pipe(Effect.scoped)
  )
})
