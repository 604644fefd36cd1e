/**
 * The runners' TCP sockets, as `@effect/platform-node`'s `NodeClusterSocket` makes them but with Nagle's
 * algorithm off (`noDelay`). Each hop of an attempt is a few small frames (a notification, then an
 * acknowledgement); with Nagle on, the second small write waits for the peer's delayed ACK, about 40 ms on Linux,
 * at nearly every hop. Turning it off took 24 trivial remote tests from 5.5–6.1 s to 3.2–3.5 s
 * (`bench/_cluster-profile.ts 24`) and the dispatch overhead per test from 158 ms to 51 ms (`bench/cluster.ts`).
 * With `SocketTls` given, both ends speak mutual TLS instead (see SocketTls.ts).
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Effect, Layer, Option } from "effect"
import { type RunnerAddress, Runners, ShardingConfig } from "effect/cluster"
import { RpcClient, RpcSerialization } from "effect/rpc"
import { Socket } from "effect/socket/Socket"
import * as SocketTls from "../SocketTls.ts"

/** How a process dials a runner (runners dial each other for health pings; coordinators dial runners). */
export const clientProtocol = (tls: Option.Option<SocketTls.SocketTls>) =>
  Layer.effect(Runners.RpcClientProtocol)(
    Effect.gen(function* () {
      const serialization = yield* RpcSerialization.RpcSerialization
      return {
        codecFor: serialization.codecFor,
        make: Effect.fnUntraced(function* (address: RunnerAddress.RunnerAddress) {
          const dial = { openTimeout: 1000, timeout: 5500, host: address.host, port: address.port, noDelay: true }
          const socket = yield* Option.match(tls, {
            onNone: () => NodeSocket.makeNet(dial),
            onSome: (tls) => NodeSocket.makeTls({ ...dial, ...SocketTls.clientOptions(tls) })
          })
          return yield* RpcClient.makeProtocolSocket().pipe(
            Effect.provideService(Socket, socket),
            Effect.provideService(RpcSerialization.RpcSerialization, serialization)
          )
        }, Effect.orDie)
      }
    })
  )

/**
 * A runner's listening socket, on its listen address (else its advertised one). With TLS, a connection whose
 * handshake fails (no certificate, or one the CA did not sign) is destroyed before it reaches the cluster.
 */
export const socketServer = (tls: Option.Option<SocketTls.SocketTls>) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const config = yield* ShardingConfig.ShardingConfig
      const listen = Option.orElse(config.runnerListenAddress, () => config.runnerAddress)
      if (Option.isNone(listen)) return yield* Effect.die("a runner needs an address to listen on")
      const address = { host: listen.value.host, port: listen.value.port, noDelay: true }
      return Option.match(tls, {
        onNone: () => NodeSocketServer.layer(address),
        onSome: (tls) => NodeSocketServer.layerTls({ ...address, ...SocketTls.serverOptions(tls) })
      })
    })
  )
