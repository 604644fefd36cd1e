import * as Crypto from "node:crypto"
import * as Net from "node:net"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, FileSystem, Layer } from "effect"
import { BlobStore } from "../src/BlobStore.ts"
import * as RecordProxy from "../src/RecordProxy.ts"
import * as TestLauncher from "../src/TestLauncher.ts"
import {
  assertCutShortScript,
  client,
  loadIn,
  node,
  platform,
  rawClient,
  runClient,
  runnerLayer,
  sessionsCutShort,
  startGreeter,
  tempDir
} from "./support.ts"

/** Runs the proxy in the background; `result` waits for it to write. */
const startProxy = (dir: string, remotePort: number, connections?: number, keepEmpty?: boolean) =>
  Effect.gen(function* () {
    const listening = yield* Deferred.make<number>()
    const fiber = yield* Effect.forkChild(
      RecordProxy.record({
        listenHost: "127.0.0.1",
        listenPort: 0,
        remoteHost: "127.0.0.1",
        remotePort,
        base: Path.join(dir, "session"),
        connections,
        keepEmpty,
        onListening: (_, port) => Deferred.succeed(listening, port)
      }).pipe(Effect.provide(BlobStore.layer({ dir: Path.join(dir, "blobs") }).pipe(Layer.provideMerge(platform))))
    )
    return { port: yield* Deferred.await(listening), result: Fiber.join(fiber), fiber }
  })

const replay = (
  dir: string,
  file: string,
  args: ReadonlyArray<string>,
  options: Partial<TestLauncher.TestOptions> = {}
) =>
  Effect.gen(function* () {
    const loaded = yield* loadIn(dir, file)
    return yield* TestLauncher.run(loaded.plan, { announce: false, program: node, args: [client, ...args], ...options })
  }).pipe(Effect.provide(Layer.merge(runnerLayer, platform)))

describe("RecordProxy", () => {
  it.live(
    "records a session between two real processes; the replay passes the client and fails it on one changed byte",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fs = yield* FileSystem.FileSystem
        const greeter = yield* startGreeter
        const proxy = yield* startProxy(dir, greeter.port, 1)
        const args = ["--long", "--blob", "40", "--blob", "5000"]
        const direct = yield* runClient(proxy.port, args)
        assert.strictEqual(direct.code, 0, direct.output)
        const recorded = yield* proxy.result
        assert.strictEqual(recorded.file, Path.join(dir, "session-1.json"))
        assert.strictEqual(recorded.exchanges, 6)
        const json = JSON.parse(yield* fs.readFileString(recorded.file!))
        const steps = json.recorded_script.scripts as Array<Record<string, unknown>>
        assert.strictEqual(json.recorded_script.type, "compound")
        assert.deepStrictEqual(
          steps.map((s) => Object.keys(s).join(",")),
          [
            "type,command,response",
            "type,command,response",
            "type,command,responses",
            "type,command,response_hex",
            "type,command,response_blob",
            "type,command,response"
          ]
        )
        assert.isTrue(yield* fs.exists(Path.join(dir, "blobs", `${steps[4]!.response_blob}.gz`)))

        const passed = yield* replay(dir, "session-1.json", args)
        assert.strictEqual(passed.exitCode, 0)
        assert.deepStrictEqual(passed.outcome.failures, [])
        assert.strictEqual(passed.outcome.summary.stepsMatched, 6)

        const changed = yield* replay(dir, "session-1.json", ["--name", "testbad", ...args])
        assert.strictEqual(changed.exitCode, 1)
        const failure = changed.outcome.failures[0]!
        assert.isTrue(failure._tag === "ScriptMismatch" && failure.offset === 10, failure.message)

        const early = yield* replay(dir, "session-1.json", ["--stop-after", "2", ...args])
        assert.strictEqual(early.exitCode, 1)
        assert.strictEqual(early.outcome.failures[0]?._tag, "ScriptNotExhausted")
      }).pipe(Effect.provide(platform)),
    120_000
  )

  it.live(
    "drops connections a port probe opened and closed without a byte; keepEmpty keeps them",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fs = yield* FileSystem.FileSystem
        const greeter = yield* startGreeter
        /** A wait-for-port probe: connect, then close (FIN) or reset (RST) at once. */
        const probe = (port: number, reset: boolean) =>
          Effect.scoped(
            Effect.flatMap(rawClient(port), (c) =>
              Effect.andThen(
                Effect.sync(() => (reset ? c.socket.resetAndDestroy() : c.socket.end())),
                c.received
              )
            )
          )
        const proxy = yield* startProxy(dir, greeter.port, 1)
        yield* probe(proxy.port, false)
        yield* probe(proxy.port, true)
        const direct = yield* runClient(proxy.port)
        assert.strictEqual(direct.code, 0, direct.output)
        const recorded = yield* proxy.result
        assert.strictEqual(recorded.connections, 1)
        assert.strictEqual(recorded.emptyDropped, 2)
        const json = JSON.parse(yield* fs.readFileString(recorded.file!))
        assert.strictEqual(json.recorded_script.type, "compound")
        const passed = yield* replay(dir, Path.basename(recorded.file!), [])
        assert.strictEqual(passed.exitCode, 0)

        const keeping = yield* startProxy(dir, greeter.port, 2, true)
        yield* probe(keeping.port, false)
        assert.strictEqual((yield* runClient(keeping.port)).code, 0)
        const kept = yield* keeping.result
        assert.strictEqual(kept.connections, 2)
        const keptJson = JSON.parse(yield* fs.readFileString(kept.file!))
        assert.strictEqual(keptJson.recorded_script.type, "compound_multi")
      }).pipe(Effect.provide(platform)),
    120_000
  )

  it.live(
    "records a 50 MB binary response into a blob and replays it",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fs = yield* FileSystem.FileSystem
        const greeter = yield* startGreeter
        const proxy = yield* startProxy(dir, greeter.port, 1)
        const args = ["--blob", String(50 * 1024 * 1024)]
        assert.strictEqual((yield* runClient(proxy.port, args)).code, 0)
        const recorded = yield* proxy.result
        const json = JSON.parse(yield* fs.readFileString(recorded.file!))
        const blob = json.recorded_script.scripts[2].response_blob as string
        assert.match(blob, /^[0-9a-f]{40}$/)
        const passed = yield* replay(dir, "session-1.json", args)
        assert.strictEqual(passed.exitCode, 0)
        assert.isAtLeast(passed.outcome.summary.bytesSent, 50 * 1024 * 1024)
      }).pipe(Effect.provide(platform)),
    180_000
  )

  it.live(
    "forwards and records every byte of a bulk answer to a client that reads slowly (read buffers are reused, never overwritten)",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fs = yield* FileSystem.FileSystem
        const content = Crypto.randomBytes(24 * 1024 * 1024)
        const upstream = yield* Effect.acquireRelease(
          Effect.callback<Net.Server>((resume) => {
            const server = Net.createServer((socket) => {
              socket.once("data", () => socket.end(content))
              socket.on("error", () => socket.destroy())
            })
            server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
          }),
          (server) => Effect.sync(() => server.close())
        )
        const proxy = yield* startProxy(dir, (upstream.address() as Net.AddressInfo).port, 1)
        const client = yield* rawClient(proxy.port)
        // Stops reading for a moment every few chunks: the proxy's writes wait while its reads go on filling buffers.
        let chunks = 0
        client.socket.on("data", () => {
          if (++chunks % 8 !== 0) return
          client.socket.pause()
          setTimeout(() => client.socket.resume(), 3)
        })
        yield* client.write("GET\n")
        const { bytes } = yield* client.received
        const sha1 = (b: Uint8Array) => Crypto.createHash("sha1").update(b).digest("hex")
        assert.strictEqual(bytes.length, content.length)
        assert.strictEqual(sha1(bytes), sha1(content))
        const recorded = yield* proxy.result
        const json = JSON.parse(yield* fs.readFileString(recorded.file!))
        // A blob is named by the sha1 of the bytes the proxy wrote to it.
        assert.strictEqual(json.recorded_script.scripts[0].response_blob, sha1(content))
      }).pipe(Effect.provide(platform)),
    120_000
  )

  it.live(
    "records several connections concurrently as compound_multi, replayed connection by connection",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fs = yield* FileSystem.FileSystem
        const greeter = yield* startGreeter
        const proxy = yield* startProxy(dir, greeter.port, 3)
        // Two clients at once: the proxy must record both connections side by side.
        const [a, b] = yield* Effect.all(
          [runClient(proxy.port, ["--name", "a"]), runClient(proxy.port, ["--name", "a", "--connections", "2"])],
          {
            concurrency: 2
          }
        )
        assert.deepStrictEqual([a.code, b.code], [0, 0])
        const recorded = yield* proxy.result
        assert.strictEqual(recorded.connections, 3)
        const json = JSON.parse(yield* fs.readFileString(recorded.file!))
        assert.strictEqual(json.recorded_script.type, "compound_multi")
        assert.strictEqual(json.recorded_script.scripts.length, 3)
        const passed = yield* replay(dir, "session-1.json", ["--name", "a", "--connections", "3"])
        assert.strictEqual(passed.exitCode, 0)
        assert.strictEqual(passed.outcome.summary.completed, 3)
        const tooFew = yield* replay(dir, "session-1.json", ["--name", "a", "--connections", "2"])
        assert.strictEqual(tooFew.exitCode, 1)
        assert.strictEqual(tooFew.outcome.failures[0]?._tag, "ScriptNotExhausted")
      }).pipe(Effect.provide(platform)),
    120_000
  )

  it.live("interrupted, the proxy writes what it has so far, to the first unused BASE-N.json", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const fs = yield* FileSystem.FileSystem
      yield* fs.writeFileString(Path.join(dir, "session-1.json"), "{}")
      const greeter = yield* startGreeter
      const proxy = yield* startProxy(dir, greeter.port)
      // A second connection still open when the interruption comes: its exchanges so far are kept too.
      yield* sessionsCutShort(proxy.port)
      yield* Fiber.interrupt(proxy.fiber)
      assertCutShortScript(yield* fs.readFileString(Path.join(dir, "session-2.json")))
    }).pipe(Effect.provide(platform))
  )
})
