// The bundled node-echo client checks the echo it claims: lines carry a nonce and must come back unchanged; a
// server that closes, answers something else or is not an echo server at all (OpenSSL's s_server) fails it.
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Builtins, Certificates, LocalhostEnvironment } from "../src/index.ts"
import { NodeServices } from "@effect/platform-node"

const asset = (name: string) => join(Builtins.assetsDirectory, name)

const hasOpenssl = (process.env.PATH ?? "").split(":").some((dir) => dir !== "" && existsSync(`${dir}/openssl`))

/** Runs the client against a port and returns its exit code and output. */
const client = (port: number, ...args: ReadonlyArray<string>) =>
  Effect.callback<{ readonly code: number | null; readonly output: string }>((resume) => {
    const child = spawn(process.execPath, [asset("echo-client.mjs"), "--port", String(port), "--timeout", "5", ...args])
    let output = ""
    child.stdout.on("data", (chunk) => (output += String(chunk)))
    child.stderr.on("data", (chunk) => (output += String(chunk)))
    child.once("exit", (code) => resume(Effect.succeed({ code, output })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** A TCP server on a free port that treats each connection with `handle`. */
const server = (handle: (socket: Net.Socket) => void) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const listener = Net.createServer((socket) => {
        socket.on("error", () => socket.destroy())
        handle(socket)
      })
      listener.listen(0, "127.0.0.1", () => resume(Effect.succeed(listener)))
    }),
    (listener) => Effect.sync(() => listener.close())
  ).pipe(Effect.map((listener) => (listener.address() as Net.AddressInfo).port))

/** Waits until a child process prints `text` on stderr or stdout. */
const printed = (child: ChildProcess, text: string) =>
  Effect.callback<void>((resume) => {
    let seen = ""
    const look = (chunk: Buffer) => {
      seen += String(chunk)
      if (seen.includes(text)) resume(Effect.void)
    }
    child.stdout?.on("data", look)
    child.stderr?.on("data", look)
  }).pipe(Effect.timeout("20 seconds"))

describe("the node-echo client", () => {
  it.live("passes against an echo server, each line carrying its nonce", () =>
    Effect.gen(function* () {
      const port = yield* server((socket) => socket.pipe(socket))
      const result = yield* client(port, "--count", "3")
      assert.strictEqual(result.code, 0, result.output)
      assert.include(result.output, "echo ok: 3 messages")
      assert.match(result.output, /echoed: hello testbed 1 [0-9a-f]{16}/)
    }).pipe(Effect.scoped)
  )

  it.live("fails when the server closes without echoing, or answers what it was not sent", () =>
    Effect.gen(function* () {
      const closing = yield* server((socket) => socket.end())
      const closed = yield* client(closing)
      assert.strictEqual(closed.code, 1, closed.output)
      assert.include(closed.output, "connection closed after 0 of 3 echoes")
      // A canned answer without the nonce: a recording replayed, not an echo.
      const canned = yield* server((socket) => socket.once("data", () => socket.write("hello testbed 1\n")))
      const wrong = yield* client(canned)
      assert.strictEqual(wrong.code, 1, wrong.output)
      assert.include(wrong.output, "mismatch")
      // A server that never answers: the client gives up after its timeout, and fails.
      const silent = yield* server(() => {})
      const quiet = yield* client(silent, "--timeout", "1")
      assert.strictEqual(quiet.code, 1, quiet.output)
      assert.include(quiet.output, "no echo of line 1")
    }).pipe(Effect.scoped)
  )

  it.live.skipIf(!hasOpenssl && process.env.CI === undefined)(
    "fails against OpenSSL's s_server, which is no echo server",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "testbed-echo-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const certificate = yield* Certificates.selfSigned(dir)
        const port = yield* LocalhostEnvironment.allocatePort("echo")
        const openssl = spawn("openssl", [
          "s_server",
          "-accept",
          `127.0.0.1:${port}`,
          "-cert",
          certificate.cert,
          "-key",
          certificate.key,
          "-www"
        ])
        yield* Effect.addFinalizer(() => Effect.sync(() => openssl.kill("SIGKILL")))
        yield* printed(openssl, "ACCEPT")
        const result = yield* client(port, "--count", "2")
        assert.notStrictEqual(result.code, 0, result.output)
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    60_000
  )
})
