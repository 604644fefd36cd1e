/**
 * The embedded MQTT broker (Aedes, in memory) used when no external broker URL is given: `testbed fleet
 * broker`, the tests and the benchmark. External brokers (Mosquitto, …) are reached by URL instead.
 */
import { createServer, type Server, type Socket } from "node:net"
import { Aedes } from "aedes"
import { Effect, Redacted, Schema, type Scope } from "effect"

export interface EmbeddedOptions {
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 1883; 0 picks a free port. */
  readonly port?: number
  /** When set, clients must present these credentials. */
  readonly username?: string
  readonly password?: Redacted.Redacted<string>
}

export interface EmbeddedBroker {
  readonly host: string
  readonly port: number
  readonly url: string
  /** Clients connected right now. */
  readonly connectedClients: Effect.Effect<number>
}

export class BrokerStartFailed extends Schema.TaggedError<BrokerStartFailed>()("BrokerStartFailed", {
  host: Schema.String,
  port: Schema.Int,
  reason: Schema.String
}) {
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

/** Starts Aedes on a TCP listener; the Scope closes every client connection and the listener. */
export const embedded = (
  options: EmbeddedOptions = {}
): Effect.Effect<EmbeddedBroker, BrokerStartFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const wanted = options.port ?? 1883
    const fail = (reason: unknown) => new BrokerStartFailed({ host, port: wanted, reason: String(reason) })
    const closeAedes = (broker: Aedes) =>
      Effect.callback<void>((resume) => {
        broker.close(() => resume(Effect.void))
      })
    const sockets = new Set<Socket>()
    // One resource: Aedes must drop its clients before the listener can finish closing.
    const { aedes, server } = yield* Effect.acquireRelease(
      Effect.gen(function* () {
        const aedes = yield* Effect.tryPromise({ try: () => Aedes.createBroker({ drainTimeout: 30_000 }), catch: fail })
        authenticate(aedes, options)
        const server = yield* Effect.callback<Server, BrokerStartFailed>((resume) => {
          const s = createServer((socket) => {
            sockets.add(socket)
            socket.once("close", () => sockets.delete(socket))
            aedes.handle(socket)
          })
          s.once("error", (error) => resume(Effect.fail(fail(error.message))))
          s.listen(wanted, host, () => resume(Effect.succeed(s)))
        }).pipe(Effect.onError(() => closeAedes(aedes)))
        return { aedes, server }
      }),
      ({ aedes, server }) => Effect.andThen(closeAedes(aedes), closeServer(server, sockets))
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : wanted
    return {
      host,
      port,
      url: `mqtt://${host}:${port}`,
      connectedClients: Effect.sync(() => aedes.connectedClients)
    }
  })
