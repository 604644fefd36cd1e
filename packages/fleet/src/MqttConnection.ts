/**
 * One MQTT connection (mqtt.js) as a scoped resource: inbound messages and (re)connections arrive on one
 * queue, in order, so a single fiber can own all protocol state. Reconnects are automatic; QoS 1 publishes
 * made while the broker is away are queued by mqtt.js and sent when it comes back.
 */
import { readFileSync } from "node:fs"
import { Deferred, Duration, Effect, Queue, Redacted, Schema, type Scope } from "effect"
import { connect, type IClientOptions, type MqttClient } from "mqtt"

export interface Tls {
  readonly caFile?: string
  readonly certFile?: string
  readonly keyFile?: string
  /** Default true: a broker certificate must verify. */
  readonly rejectUnauthorized?: boolean
}

export interface ConnectOptions {
  /** `mqtt://host:port`, `mqtts://host:port`, `ws://…`. Credentials go in `username`/`password`, not here. */
  readonly url: string
  readonly clientId: string
  readonly username?: string
  readonly password?: Redacted.Redacted<string>
  readonly tls?: Tls
  readonly will?: { readonly topic: string; readonly payload: string; readonly qos: 0 | 1 }
  readonly keepaliveSeconds?: number
  readonly reconnectPeriod?: Duration.Input
}

export type Inbound =
  | { readonly _tag: "Connected"; readonly reconnect: boolean }
  | { readonly _tag: "Message"; readonly topic: string; readonly payload: string }

export class BrokerUnreachable extends Schema.TaggedError<BrokerUnreachable>()("BrokerUnreachable", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot reach the MQTT broker at ${this.url}: ${this.reason}`
  }
}

export class PublishFailed extends Schema.TaggedError<PublishFailed>()("PublishFailed", {
  topic: Schema.String,
  reason: Schema.String
}) {}

export interface MqttConnection {
  readonly clientId: string
  readonly url: string
  readonly inbound: Queue.Dequeue<Inbound>
  /** Completes once the broker has acknowledged a QoS 1 message (at once for QoS 0). */
  readonly publish: (topic: string, payload: string, qos?: 0 | 1) => Effect.Effect<void, PublishFailed>
  /** Subscriptions are renewed by mqtt.js after every reconnect. */
  readonly subscribe: (topics: ReadonlyArray<string>, qos?: 0 | 1) => Effect.Effect<void, PublishFailed>
  /** Waits for the first connection, failing if the broker refuses or does not answer in time. */
  readonly awaitConnected: (timeout: Duration.Input) => Effect.Effect<void, BrokerUnreachable>
  readonly isConnected: Effect.Effect<boolean>
}

/** The URL with any `user:password@` removed, for messages and logs. */
export const safeUrl = (url: string): string => url.replace(/\/\/[^@/]*@/, "//")

// CONNACK 4/5 (MQTT 3.1.1) and 134/135 (MQTT 5): bad user name or password, not authorised.
const refusedCodes = new Set<unknown>([4, 5, 134, 135])
const isPermanent = (error: Error & { readonly code?: unknown }): boolean =>
  refusedCodes.has(error.code) ||
  (typeof error.code === "string" && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(error.code))

const clientOptions = (options: ConnectOptions): IClientOptions => {
  const tls = options.tls
  return {
    clientId: options.clientId,
    clean: true,
    keepalive: options.keepaliveSeconds ?? 60,
    reconnectPeriod: Duration.toMillis(options.reconnectPeriod ?? "1 second"),
    connectTimeout: 10_000,
    resubscribe: true,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: Redacted.value(options.password) } : {}),
    ...(options.will !== undefined
      ? {
          will: {
            topic: options.will.topic,
            payload: Buffer.from(options.will.payload),
            qos: options.will.qos,
            retain: false
          }
        }
      : {}),
    ...(tls !== undefined
      ? {
          ...(tls.caFile !== undefined ? { ca: readFileSync(tls.caFile) } : {}),
          ...(tls.certFile !== undefined ? { cert: readFileSync(tls.certFile) } : {}),
          ...(tls.keyFile !== undefined ? { key: readFileSync(tls.keyFile) } : {}),
          rejectUnauthorized: tls.rejectUnauthorized ?? true
        }
      : {})
  }
}

export const make = (options: ConnectOptions): Effect.Effect<MqttConnection, BrokerUnreachable, Scope.Scope> =>
  Effect.gen(function* () {
    const inbound = yield* Queue.unbounded<Inbound>()
    const firstConnect = yield* Deferred.make<void, BrokerUnreachable>()
    const url = safeUrl(options.url)
    const opts = yield* Effect.try({
      try: () => clientOptions(options),
      catch: (cause) => new BrokerUnreachable({ url, reason: `TLS files: ${String(cause)}` })
    })
    let connects = 0
    let lastError = "no answer"
    const client: MqttClient = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const c = connect(options.url, opts)
        c.on("connect", () => {
          connects++
          Queue.offerUnsafe(inbound, { _tag: "Connected", reconnect: connects > 1 })
          Deferred.doneUnsafe(firstConnect, Effect.void)
        })
        c.on("message", (topic, payload) => {
          Queue.offerUnsafe(inbound, { _tag: "Message", topic, payload: payload.toString("utf8") })
        })
        // mqtt.js keeps reconnecting after errors; remembered so a failed first connect can say why. A broker
        // certificate that does not verify, or credentials the broker refused, will not heal by waiting.
        c.on("error", (error) => {
          lastError = error.message
          if (connects === 0 && isPermanent(error)) {
            Deferred.doneUnsafe(firstConnect, Effect.fail(new BrokerUnreachable({ url, reason: error.message })))
          }
        })
        return c
      }),
      (c) =>
        Effect.callback<void>((resume) => {
          c.end(false, {}, () => resume(Effect.void))
        }).pipe(
          Effect.timeout("2 seconds"),
          Effect.catch(() => Effect.sync(() => c.end(true))),
          Effect.andThen(Queue.shutdown(inbound))
        )
    )
    const publish = (topic: string, payload: string, qos: 0 | 1 = 1) =>
      Effect.callback<void, PublishFailed>((resume) => {
        client.publish(topic, payload, { qos }, (error) =>
          resume(error ? Effect.fail(new PublishFailed({ topic, reason: error.message })) : Effect.void)
        )
      })
    const subscribe = (topics: ReadonlyArray<string>, qos: 0 | 1 = 1) =>
      Effect.callback<void, PublishFailed>((resume) => {
        client.subscribe([...topics], { qos }, (error) =>
          resume(
            error ? Effect.fail(new PublishFailed({ topic: topics.join(","), reason: error.message })) : Effect.void
          )
        )
      })
    const awaitConnected = (timeout: Duration.Input) =>
      Deferred.await(firstConnect).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => Effect.suspend(() => Effect.fail(new BrokerUnreachable({ url, reason: lastError })))
        })
      )
    return {
      clientId: options.clientId,
      url,
      inbound,
      publish,
      subscribe,
      awaitConnected,
      isConnected: Effect.sync(() => client.connected)
    }
  })
