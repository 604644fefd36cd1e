/**
 * The embedded MQTT broker (Aedes, in memory) used when no external broker URL is given: `testbed fleet
 * broker`, the tests and the benchmark. External brokers (Mosquitto, …) are reached by URL instead. Besides
 * its plain TCP listener it can take a TLS listener (`mqtts://`), a node:tls server feeding the same Aedes.
 */
import { readFileSync } from "node:fs"
import { createServer, type Server, type Socket } from "node:net"
import { createServer as createTlsServer } from "node:tls"
import { Aedes } from "aedes"
import { Effect, Redacted, Runtime, Schema, type Scope } from "effect"
import { ExitCode } from "@testbed/events"
import { coalesceWrites } from "./internal/noDelay.ts"

export interface TlsListener {
  /** PEM server certificate (with its chain) and key. */
  readonly certFile: string
  readonly keyFile: string
  /** Default 8883; 0 picks a free port. */
  readonly port?: number
}

export interface EmbeddedOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 1883; 0 picks a free port. */
  readonly port?: number
  /** When set, clients must present these credentials. */
  readonly username?: string
  readonly password?: Redacted.Redacted<string>
  /** A second listener speaking MQTT over TLS (the plain one stays). */
  readonly tls?: TlsListener
}

export interface EmbeddedBroker {
  readonly host: string
  readonly port: number
  readonly url: string
  /** Set when a TLS listener was asked for: its port and `mqtts://host:port`. */
  readonly tlsPort?: number
  readonly tlsUrl?: string
  /** Clients connected right now. */
  readonly connectedClients: Effect.Effect<number>
}

export class BrokerStartFailed extends Schema.TaggedError<BrokerStartFailed>()("BrokerStartFailed", {
  host: Schema.String,
  port: Schema.Int,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot start the embedded MQTT broker on ${this.host}:${this.port}: ${this.reason}`
  }
}

const authenticate = (aedes: Aedes, options: EmbeddedOptions): void => {
  if (options.username === undefined && options.password === undefined) return
  const user = options.username
  const pass = options.password === undefined ? undefined : Redacted.value(options.password)
  aedes.authenticate = (_client, username, password, done) => {
    if (username === user && password?.toString("utf8") === pass) return done(null, true)
    // 4: bad user name or password (MQTT 3.1.1 CONNACK return code).
    return done(Object.assign(new Error("bad user name or password"), { returnCode: 4 }), false)
  }
}

const closeServer = (server: Server, sockets: Set<Socket>) =>
  Effect.callback<void>((resume) => {
    server.close(() => resume(Effect.void))
    // A client that ignores Aedes's close would keep the listener open for ever.
    for (const socket of sockets) socket.destroy()
  })

const listen = (server: Server, port: number, host: string, fail: (reason: unknown) => BrokerStartFailed) =>
  Effect.callback<Server, BrokerStartFailed>((resume) => {
    server.once("error", (error) => resume(Effect.fail(fail(error.message))))
    server.listen(port, host, () => resume(Effect.succeed(server)))
  })

const portOf = (server: Server, fallback: number): number => {
  const address = server.address()
  return typeof address === "object" && address !== null ? address.port : fallback
}

/** Starts Aedes on a TCP listener (and a TLS one if asked); the Scope closes every connection and listener. */
export const embedded = Effect.fn("Broker.embedded")(function* (
  options: EmbeddedOptions = {}
): Effect.fn.Return<EmbeddedBroker, BrokerStartFailed, Scope.Scope> {
  const host = options.host ?? "127.0.0.1"
  const wanted = options.port ?? 1883
  const fail = (reason: unknown) => new BrokerStartFailed({ host, port: wanted, reason: String(reason) })
  const tlsWanted = options.tls?.port ?? 8883
  const failTls = (reason: unknown) => new BrokerStartFailed({ host, port: tlsWanted, reason: String(reason) })
  // Read before anything starts: a wrong path is the likeliest mistake and should say which file.
  const tlsFiles =
    options.tls === undefined
      ? undefined
      : yield* Effect.try({
          try: () => ({ cert: readFileSync(options.tls!.certFile), key: readFileSync(options.tls!.keyFile) }),
          catch: (cause) => failTls(`TLS certificate or key: ${String(cause)}`)
        })
  const closeAedes = (broker: Aedes) =>
    Effect.callback<void>((resume) => {
      broker.close(() => resume(Effect.void))
    })
  const sockets = new Set<Socket>()
  const closeEverything = (aedes: Aedes, servers: ReadonlyArray<Server>) =>
    Effect.andThen(
      closeAedes(aedes),
      Effect.forEach(servers, (server) => closeServer(server, sockets), { discard: true })
    )
  const track = (aedes: Aedes) => (socket: Socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
    coalesceWrites(socket)
    aedes.handle(socket)
  }
  // One resource: Aedes must drop its clients before the listeners can finish closing.
  const { aedes, servers } = yield* Effect.acquireRelease(
    Effect.gen(function* () {
      const aedes = yield* Effect.tryPromise({ try: () => Aedes.createBroker({ drainTimeout: 30_000 }), catch: fail })
      authenticate(aedes, options)
      const servers: Array<Server> = []
      const closeAll = closeEverything(aedes, servers)
      yield* Effect.gen(function* () {
        // Nagle's algorithm off on every accepted socket: the broker writes small packets (a PUBACK, then the
        // message it forwards a moment later) and each would wait for the client's delayed ACK, up to 40 ms on Linux.
        servers.push(yield* listen(createServer({ noDelay: true }, track(aedes)), wanted, host, fail))
        if (tlsFiles !== undefined) {
          // A handshake that fails (an untrusting client, a port scanner) only ends that socket.
          const tlsServer = createTlsServer({ ...tlsFiles, minVersion: "TLSv1.2", noDelay: true }, track(aedes))
          // Raw sockets too: one stuck in its handshake would otherwise hold the listener open on close.
          tlsServer.on("connection", (socket: Socket) => {
            sockets.add(socket)
            socket.once("close", () => sockets.delete(socket))
          })
          servers.push(yield* listen(tlsServer, tlsWanted, host, failTls))
        }
      }).pipe(Effect.onError(() => closeAll))
      return { aedes, servers }
    }),
    ({ aedes, servers }) => closeEverything(aedes, servers)
  )
  const port = portOf(servers[0]!, wanted)
  const tlsServer = servers[1]
  const tlsPort = tlsServer === undefined ? undefined : portOf(tlsServer, tlsWanted)
  return {
    host,
    port,
    url: `mqtt://${host}:${port}`,
    ...(tlsPort !== undefined ? { tlsPort, tlsUrl: `mqtts://${host}:${tlsPort}` } : {}),
    connectedClients: Effect.sync(() => aedes.connectedClients)
  }
})
