// An MQTT broker in memory, for unit tests of the operator, the agent and the commander: topics with `+` and `#`
// filters, wills published when a client is dropped (as a crash would), connections lost and regained on demand.
// Delivery is immediate and in order; QoS, retained messages and sessions are not modelled.
import { Context, Effect, Queue, type Scope } from "effect"
import type { ConnectOptions, Inbound, MqttConnection } from "../MqttConnection.ts"

export interface Published {
  readonly from: string
  readonly topic: string
  readonly payload: string
}

/** The test's handle on the broker: what was published, who is connected, and failures to inflict. */
export class MemoryBroker extends Context.Service<
  MemoryBroker,
  {
    /** Every message published through the broker, in order (wills included). */
    readonly published: Effect.Effect<ReadonlyArray<Published>>
    /** Client ids connected now. */
    readonly clients: Effect.Effect<ReadonlyArray<string>>
    /** Ends a client's connection as a crash would: it sees `Disconnected`, the others its will. */
    readonly drop: (clientId: string) => Effect.Effect<void>
    /** Connects a dropped client again: it sees `Connected` (a reconnect) and keeps its subscriptions. */
    readonly reconnect: (clientId: string) => Effect.Effect<void>
  }
>()("@testbed/fleet/MemoryBroker") {}

/** Whether an MQTT topic filter (`a/+/c`, `a/#`) matches a topic. */
export const matches = (filter: string, topic: string): boolean => {
  const want = filter.split("/")
  const have = topic.split("/")
  for (let i = 0; i < want.length; i++) {
    if (want[i] === "#") return true
    if (i >= have.length || (want[i] !== "+" && want[i] !== have[i])) return false
  }
  return want.length === have.length
}

interface Client {
  readonly options: ConnectOptions
  readonly inbound: Queue.Queue<Inbound>
  readonly filters: Set<string>
  up: boolean
}

/** A broker, and the `connect` of its connections (what `MqttConnection.Connector` holds). */
export const make = () => {
  const clients = new Map<string, Client>()
  const published: Array<Published> = []

  const deliver = (from: string, topic: string, payload: string) => {
    published.push({ from, topic, payload })
    for (const client of clients.values()) {
      if (client.up && [...client.filters].some((filter) => matches(filter, topic))) {
        Queue.offerUnsafe(client.inbound, { _tag: "Message", topic, payload })
      }
    }
  }

  const connection = (client: Client): MqttConnection => {
    // Delivery is immediate here: waiting for the acknowledgement and not waiting are the same.
    const publish = (topic: string, payload: string) =>
      Effect.sync(() => {
        if (client.up) deliver(client.options.clientId, topic, payload)
      })
    return {
      clientId: client.options.clientId,
      url: client.options.url,
      inbound: client.inbound,
      publish,
      send: publish,
      subscribe: (topics) =>
        Effect.sync(() => {
          for (const topic of topics) client.filters.add(topic)
        }),
      awaitConnected: () => Effect.void,
      awaitFirstAttempt: Effect.void,
      isConnected: Effect.sync(() => client.up)
    }
  }

  const connect = (options: ConnectOptions): Effect.Effect<MqttConnection, never, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.gen(function* () {
        const client: Client = { options, inbound: yield* Queue.unbounded<Inbound>(), filters: new Set(), up: true }
        clients.set(options.clientId, client)
        Queue.offerUnsafe(client.inbound, { _tag: "Connected", reconnect: false })
        return client
      }),
      // A client that closes its connection leaves without its will, as with a real broker.
      (client) =>
        Effect.andThen(
          Effect.sync(() => {
            if (clients.get(client.options.clientId) === client) clients.delete(client.options.clientId)
          }),
          Queue.shutdown(client.inbound)
        )
    ).pipe(Effect.map(connection))

  const broker = MemoryBroker.of({
    published: Effect.sync(() => [...published]),
    clients: Effect.sync(() => [...clients.values()].filter((c) => c.up).map((c) => c.options.clientId)),
    drop: (clientId) =>
      Effect.sync(() => {
        const client = clients.get(clientId)
        if (client === undefined || !client.up) return
        client.up = false
        Queue.offerUnsafe(client.inbound, { _tag: "Disconnected" })
        const will = client.options.will
        if (will !== undefined) deliver(clientId, will.topic, will.payload)
      }),
    reconnect: (clientId) =>
      Effect.sync(() => {
        const client = clients.get(clientId)
        if (client === undefined || client.up) return
        client.up = true
        Queue.offerUnsafe(client.inbound, { _tag: "Connected", reconnect: true })
      })
  })
  return { broker, connect }
}
