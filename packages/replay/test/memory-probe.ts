/**
 * Runs one large replay job in its own process and prints its peak RSS (process.resourceUsage().maxRSS), so a
 * test can bound the memory of `replay check`, the replay server and the record proxy with real sizes.
 *   node memory-probe.ts prepare DIR MIB   writes DIR/session.json naming one blob of MIB MiB (a small .gz)
 *   node memory-probe.ts check DIR         loads every entry (what `replay check` does)
 *   node memory-probe.ts serve DIR         serves the script to a client process that reads the whole response
 *   node memory-probe.ts record DIR MIB    records an upstream's MIB MiB answer through the proxy
 * Prints one JSON line: { baselineMiB, peakMiB, bytes }.
 */
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Stream from "node:stream"
import * as Zlib from "node:zlib"
import { NodeServices } from "@effect/platform-node"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { ActionRegistry } from "../src/Action.ts"
import { BlobStore } from "../src/BlobStore.ts"
import * as RecordProxy from "../src/RecordProxy.ts"
import * as ReplayServer from "../src/ReplayServer.ts"
import * as ScriptLoader from "../src/ScriptLoader.ts"

const [mode = "", dir = "", mib = "0"] = process.argv.slice(2)
const bytes = Number(mib) * 1024 * 1024
const piece = Buffer.alloc(1024 * 1024, 0x61)
const rss = () => process.resourceUsage().maxRSS / 1024
const baselineMiB = rss()
const print = (done: number) =>
  Effect.sync(() => process.stdout.write(`${JSON.stringify({ baselineMiB, peakMiB: rss(), bytes: done })}\n`))

/** A node program, run with this Node, that sends `request` to PORT and counts what comes back until EOF. */
const counter = (request: string) =>
  `const s = require("net").connect(Number(process.argv[1]), "127.0.0.1", () => s.write(${JSON.stringify(request)}));` +
  `let n = 0; s.on("data", (c) => { n += c.length }); s.on("end", () => { s.end(); process.stdout.write(String(n)) })`

const runCounter = (port: number, request: string) =>
  Effect.callback<number>((resume) => {
    const child = ChildProcess.execFile(process.execPath, ["-e", counter(request), String(port)], (error, out) =>
      resume(error ? Effect.die(error) : Effect.succeed(Number(out)))
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const megabytes = function* () {
  for (let sent = 0; sent < bytes; sent += piece.length) yield piece
}

const prepare = Effect.callback<void>((resume) => {
  const hash = Crypto.createHash("sha1")
  for (let sent = 0; sent < bytes; sent += piece.length) hash.update(piece)
  const name = hash.digest("hex")
  Fs.mkdirSync(Path.join(dir, "blobs"), { recursive: true })
  const script = {
    recorded_script: { type: "compound", scripts: [{ type: "script", command: "GET\n", response_blob: name }] },
    twice: { type: "named", name: "recorded_script" }
  }
  Fs.writeFileSync(Path.join(dir, "session.json"), JSON.stringify(script))
  Stream.pipeline(
    Stream.Readable.from(megabytes()),
    Zlib.createGzip(),
    Fs.createWriteStream(Path.join(dir, "blobs", `${name}.gz`)),
    (error) => resume(error ? Effect.die(error) : print(bytes))
  )
})

const layers = Layer.mergeAll(BlobStore.layer({ dir: Path.join(dir, "blobs") }), ActionRegistry.layerEmpty).pipe(
  Layer.provideMerge(NodeServices.layer)
)

const check = Effect.gen(function* () {
  const scripts = yield* ScriptLoader.loadAll({ file: Path.join(dir, "session.json") })
  yield* print(scripts[0]?.blobs[0]?.bytes ?? 0)
})

const serve = Effect.scoped(
  Effect.gen(function* () {
    const loaded = yield* ScriptLoader.load({ file: Path.join(dir, "session.json") })
    const server = yield* ReplayServer.serve(loaded.plan, { connections: 1, announce: false })
    const received = yield* runCounter(server.port, "GET\n")
    const outcome = yield* server.done
    if (outcome.failures.length > 0) return yield* Effect.die(outcome.failures[0]!.message)
    yield* print(received)
  })
)

/** An upstream that answers GET with `bytes` bytes (with back-pressure), then closes. */
const upstream = `const piece = Buffer.alloc(1 << 20, 0x61); let left = ${bytes};
require("net").createServer((s) => { s.once("data", () => { const more = () => { while (left > 0) { left -= piece.length; if (!s.write(piece)) return s.once("drain", more) } s.end() }; more() }); s.on("error", () => {}) })
  .listen(0, "127.0.0.1", function () { process.stdout.write(this.address().port + "\\n") })`

const record = Effect.scoped(
  Effect.gen(function* () {
    const server = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ChildProcess.spawn(process.execPath, ["-e", upstream], { stdio: ["ignore", "pipe", "inherit"] })
      ),
      (child) => Effect.sync(() => child.kill("SIGKILL"))
    )
    const remotePort = yield* Effect.callback<number>((resume) => {
      server.stdout.once("data", (chunk: Buffer) => resume(Effect.succeed(Number(chunk.toString().trim()))))
    })
    const listening = yield* Deferred.make<number>()
    const proxy = yield* Effect.forkChild(
      RecordProxy.record({
        listenHost: "127.0.0.1",
        listenPort: 0,
        remoteHost: "127.0.0.1",
        remotePort,
        base: Path.join(dir, "recorded"),
        connections: 1,
        onListening: (_, port) => Deferred.succeed(listening, port)
      })
    )
    const received = yield* runCounter(yield* Deferred.await(listening), "GET\n")
    yield* Fiber.join(proxy)
    yield* print(received)
  })
)

const modes: Record<string, Effect.Effect<void, unknown, BlobStore | ActionRegistry | NodeServices.NodeServices>> = {
  prepare,
  check,
  serve,
  record
}
const program = modes[mode]
if (program === undefined) throw new Error(`unknown mode ${mode}`)
Effect.runPromise(program.pipe(Effect.provide(layers))).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
