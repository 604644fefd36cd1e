// Nagle's algorithm is off on both ends of every MQTT connection testbed makes: the client sockets mqtt.js opens
// (first connection and reconnects, plain and TLS) and the sockets the embedded broker accepts. Read back from the
// kernel (TCP_NODELAY through getsockopt), not timed.
import { rmSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import { Broker, MqttConnection } from "../src/index.ts"
import { layer, type TlsFiles, tcpProxy, tlsFiles } from "./helpers.ts"
import { canReadSocketOptions, tcpSockets } from "./socketOptions.ts"

/** Both ends of the connections on `port` in this process: the clients' and the broker's, each with Nagle off. */
const assertNoDelayBothEnds = (port: number) => {
  const sockets = tcpSockets(port)
  const clients = sockets.filter((socket) => socket.remotePort === port)
  const accepted = sockets.filter((socket) => socket.localPort === port)
  assert.isAbove(clients.length, 0, `no client socket to port ${port}`)
  assert.isAbove(accepted.length, 0, `no socket accepted on port ${port}`)
  for (const socket of sockets) {
    assert.isTrue(socket.noDelay, `Nagle on for fd ${socket.fd} (${socket.localPort} → ${socket.remotePort})`)
  }
}

const connected = (options: MqttConnection.ConnectOptions) =>
  Effect.tap(MqttConnection.make(options), (connection) => connection.awaitConnected("10 seconds"))

/** Waits until the connection says it is back after a loss. */
const reconnected = (connection: MqttConnection.MqttConnection) =>
  Queue.take(connection.inbound).pipe(
    Effect.repeat({ until: (inbound) => inbound._tag === "Connected" && inbound.reconnect }),
    Effect.timeout("10 seconds")
  )

describe.runIf(canReadSocketOptions)("TCP_NODELAY on MQTT sockets", () => {
  it.live("the embedded broker's accepted sockets and mqtt.js's client sockets", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      yield* connected({ url: broker.url, clientId: "nodelay-a" })
      yield* connected({ url: broker.url, clientId: "nodelay-b" })
      assertNoDelayBothEnds(broker.port)
      assert.strictEqual(tcpSockets(broker.port).length, 4)
    }).pipe(Effect.provide(layer))
  )

  it.live("the socket mqtt.js opens when it reconnects", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const proxy = yield* tcpProxy(broker.port)
      const connection = yield* connected({
        url: `mqtt://127.0.0.1:${proxy.port}`,
        clientId: "nodelay-reconnect",
        reconnectPeriod: "50 millis"
      })
      const before = tcpSockets(proxy.port).filter((socket) => socket.remotePort === proxy.port)
      yield* proxy.cut
      yield* reconnected(connection)
      const after = tcpSockets(proxy.port).filter((socket) => socket.remotePort === proxy.port)
      assert.strictEqual(after.length, 1)
      assert.notDeepEqual(after[0]!.localPort, before[0]!.localPort, "a new socket after the cut")
      assert.isTrue(after[0]!.noDelay)
    }).pipe(Effect.provide(layer))
  )

  it.live("both ends over TLS (the embedded broker's TLS listener)", () =>
    Effect.gen(function* () {
      const files = yield* Effect.acquireRelease(Effect.sync(tlsFiles), (f: TlsFiles) =>
        Effect.sync(() => rmSync(f.dir, { recursive: true, force: true }))
      )
      const broker = yield* Broker.embedded({
        port: 0,
        tls: { certFile: files.certFile, keyFile: files.keyFile, port: 0 }
      })
      yield* connected({ url: broker.tlsUrl!, clientId: "nodelay-tls", tls: { caFile: files.caFile } })
      assertNoDelayBothEnds(broker.tlsPort!)
    }).pipe(Effect.provide(layer))
  )
})
