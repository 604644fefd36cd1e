// Test support: layers, a real Mosquitto owned by a Scope, free ports, agent processes.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createConnection, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { LocalRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Effect, Layer, type Scope } from "effect"

export const MOSQUITTO = "/usr/sbin/mosquitto"
export const hasMosquitto = existsSync(MOSQUITTO)
/** Under CI a missing Mosquitto must fail the suite, never skip it. */
export const runMosquittoTests = hasMosquitto || process.env.CI === "true"

export const layer = LocalRunner.layer.pipe(
  Layer.provideMerge(EventBus.EventBus.layer),
  Layer.provideMerge(NodeServices.layer)
)

/** A fresh temp directory, removed with the Scope. */
export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

export const freePort: Effect.Effect<number> = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

/** Polls until something listens on the port (a process start is not an event we can await). */
export const awaitListening = (port: number, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 400; i++) {
      if (yield* Effect.promise(() => canConnect(port))) return
      yield* Effect.sleep("25 millis")
    }
    return yield* Effect.die(new Error(`${what} did not listen on ${port}`))
  })

const waitExit = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

export interface Mosquitto {
  readonly port: number
  readonly url: string
  /** SIGKILL: no will is published. */
  readonly stop: Effect.Effect<void>
  /** SIGTERM makes Mosquitto publish every client's will before it exits; SIGKILL does not. */
  readonly stopWith: (signal: "SIGTERM" | "SIGKILL") => Effect.Effect<void>
  readonly start: Effect.Effect<void>
}

export interface TlsFiles {
  readonly dir: string
  readonly caFile: string
  readonly certFile: string
  readonly keyFile: string
}

/**
 * A CA and a server certificate for 127.0.0.1 signed by it, made with the `openssl` CLI in a fresh temp dir
 * (readable by Mosquitto's own user: it drops root before reading them).
 */
export const tlsFiles = (): TlsFiles => {
  const dir = mkdtempSync(join(tmpdir(), "fleet-tls-"))
  const at = (name: string) => join(dir, name)
  const openssl = (...args: ReadonlyArray<string>) =>
    execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] })
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.crt"),
    "-days",
    "2",
    "-subj",
    "/CN=fleet test CA"
  )
  openssl("req", ...ec, "-keyout", at("server.key"), "-out", at("server.csr"), "-subj", "/CN=127.0.0.1")
  writeFileSync(at("ext.cnf"), "subjectAltName = IP:127.0.0.1, DNS:localhost\n")
  openssl(
    "x509",
    "-req",
    "-in",
    at("server.csr"),
    "-CA",
    at("ca.crt"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-out",
    at("server.crt"),
    "-days",
    "2",
    "-extfile",
    at("ext.cnf")
  )
  chmodSync(dir, 0o755)
  for (const name of ["ca.crt", "server.crt", "server.key"]) chmodSync(at(name), 0o644)
  return { dir, caFile: at("ca.crt"), certFile: at("server.crt"), keyFile: at("server.key") }
}

/**
 * A Mosquitto of our own on a free loopback port; `auth` writes a password file; `tls` makes its one listener
 * TLS-only (`mqtts://`). Killed with the Scope.
 */
export const mosquitto = (auth?: { readonly username: string; readonly password: string }, tls?: TlsFiles) =>
  Effect.gen(function* () {
    if (!hasMosquitto) return yield* Effect.die(new Error(`${MOSQUITTO} is missing (install mosquitto)`))
    const port = yield* freePort
    const dir = mkdtempSync(join(tmpdir(), "fleet-mosquitto-"))
    // TLS: our readiness probe (connect, then close) would log an OpenSSL error for every poll.
    const logType = tls === undefined ? "error" : "none"
    const lines = [`listener ${port} 127.0.0.1`, "persistence false", "log_dest stderr", `log_type ${logType}`]
    if (auth === undefined) lines.push("allow_anonymous true")
    else {
      const passwords = join(dir, "passwords")
      execFileSync("mosquitto_passwd", ["-b", "-c", passwords, auth.username, auth.password])
      // Started as root, Mosquitto drops to its own user, which must still read the file.
      chmodSync(dir, 0o755)
      chmodSync(passwords, 0o644)
      lines.push("allow_anonymous false", `password_file ${passwords}`)
    }
    if (tls !== undefined) lines.push(`cafile ${tls.caFile}`, `certfile ${tls.certFile}`, `keyfile ${tls.keyFile}`)
    const conf = join(dir, "mosquitto.conf")
    writeFileSync(conf, `${lines.join("\n")}\n`)
    let child: ChildProcess | undefined
    const stopWith = (signal: "SIGTERM" | "SIGKILL") =>
      Effect.gen(function* () {
        const running = child
        child = undefined
        if (running === undefined) return
        running.kill(signal)
        yield* waitExit(running)
      })
    const stop = stopWith("SIGKILL")
    const start = Effect.gen(function* () {
      child = spawn(MOSQUITTO, ["-c", conf], { stdio: ["ignore", "ignore", "inherit"] })
      yield* awaitListening(port, "mosquitto")
    })
    yield* Effect.acquireRelease(start, () =>
      Effect.andThen(
        stop,
        Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
    )
    const scheme = tls === undefined ? "mqtt" : "mqtts"
    return { port, url: `${scheme}://127.0.0.1:${port}`, stop, stopWith, start } satisfies Mosquitto
  })

// The package's own agent entry point, never the app's CLI (the CLI's tests live in apps/testbed).
const agentEntry = join(import.meta.dirname, "..", "src", "bin", "agent.ts")
// The real binary: node_modules/.bin/node is a shell wrapper that a signal would not reach through.
const node = process.execPath

/** An agent process (`src/bin/agent.ts` with these flags), killed (SIGKILL) with the Scope unless it ended. */
export const agentProcess = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {}
): Effect.Effect<ChildProcess, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(node, [agentEntry, ...args], {
        env: { ...process.env, ...env },
        stdio: ["pipe", "pipe", "pipe"],
        // Its own process group, so the commands it started die with it.
        detached: true
      })
    ),
    (child) =>
      Effect.gen(function* () {
        killGroup(child, "SIGKILL")
        yield* waitExit(child)
      })
  )

/** Signals the child's whole process group (the agent and the commands it runs). */
export const killGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // Already gone.
  }
}

export const exitOf = (child: ChildProcess) =>
  Effect.callback<number | null>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

/** Collected stdout of a child, for assertions after it ended. */
export const outputOf = (child: ChildProcess): { readonly text: () => string } => {
  let text = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8")
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8")
  })
  return { text: () => text }
}

export interface TcpProxy {
  readonly port: number
  /** Drops every connection through it, as a network failure would (no MQTT DISCONNECT): the broker publishes wills. */
  readonly cut: Effect.Effect<void>
}

/** A loopback TCP proxy to `targetPort` (TLS passes through untouched), closed with the Scope. */
export const tcpProxy = (targetPort: number): Effect.Effect<TcpProxy, never, Scope.Scope> =>
  Effect.gen(function* () {
    const sockets = new Set<import("node:net").Socket>()
    const track = (socket: import("node:net").Socket) => {
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
      socket.on("error", () => socket.destroy())
    }
    const server = createServer((client) => {
      const upstream = createConnection({ host: "127.0.0.1", port: targetPort })
      track(client)
      track(upstream)
      client.pipe(upstream)
      upstream.pipe(client)
      client.once("close", () => upstream.destroy())
      upstream.once("close", () => client.destroy())
    })
    const cut = Effect.sync(() => {
      for (const socket of sockets) socket.destroy()
    })
    const port = yield* Effect.acquireRelease(
      Effect.callback<number>((resume) => {
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () =>
        Effect.andThen(
          cut,
          Effect.callback<void>((resume) => {
            server.close(() => resume(Effect.void))
          })
        )
    )
    return { port, cut }
  })
