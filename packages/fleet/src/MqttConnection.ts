/**
 * One MQTT connection (mqtt.js) as a scoped resource: inbound messages and (re)connections arrive on one
 * queue, in order, so a single fiber can own all protocol state. Reconnects are automatic, with a backoff
 * that doubles up to a ceiling, and every failed attempt is logged; QoS 1 publishes made while the broker is
 * away are queued by mqtt.js and sent when it comes back. Credentials the broker refuses and broker
 * certificates that do not verify fail the first connection at once: waiting would not heal them.
 */
import { readFileSync } from "node:fs"
import { Context, Deferred, Duration, Effect, Layer, Queue, Redacted, Runtime, Schema, type Scope } from "effect"
import { connect, type IClientOptions, type MqttClient } from "mqtt"
import * as MemoryBrokerImpl from "./internal/memoryBroker.ts"
import { withoutNagle } from "./internal/noDelay.ts"
import { MemoryBroker } from "./internal/memoryBroker.ts"
import { ExitCode } from "@testbed/events"

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
  /** Wait before the first reconnect attempt, doubled after each failed one. Default 1 second. */
  readonly reconnectPeriod?: Duration.Input
  /** The longest wait between attempts. Default 30 seconds. */
  readonly maxReconnectPeriod?: Duration.Input
  /** How long one attempt waits for the broker's answer. Default 10 seconds. */
  readonly connectTimeout?: Duration.Input
}

export type Inbound =
  | { readonly _tag: "Connected"; readonly reconnect: boolean }
  | { readonly _tag: "Disconnected" }
  | { readonly _tag: "Message"; readonly topic: string; readonly payload: string }

export class BrokerUnreachable extends Schema.TaggedError<BrokerUnreachable>()("BrokerUnreachable", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot reach the MQTT broker at ${this.url}: ${this.reason}`
  }
}

/** The broker answered and said no: bad user name or password, or not authorised. Retrying will not help. */
export class AuthRefused extends Schema.TaggedError<AuthRefused>()("AuthRefused", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `the MQTT broker at ${this.url} refused the connection: ${this.reason} (check the user name and password)`
  }
}

export class PublishFailed extends Schema.TaggedError<PublishFailed>()("PublishFailed", {
  topic: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `cannot publish on ${this.topic}: ${this.reason}`
  }
}

export type ConnectFailed = BrokerUnreachable | AuthRefused

export interface MqttConnection {
  readonly clientId: string
  readonly url: string
  readonly inbound: Queue.Dequeue<Inbound>
  /** Completes once the broker has acknowledged a QoS 1 message (at once for QoS 0). */
  readonly publish: (topic: string, payload: string, qos?: 0 | 1) => Effect.Effect<void, PublishFailed>
  /**
   * Hands the message to the client and returns at once; a failure (the connection ended before the broker
   * acknowledged it) is logged. For the hot path, where waiting for each acknowledgement costs a timer and a fiber
   * per message and callers resend what matters themselves (the operator resends waiting commands after a reconnect).
   */
  readonly send: (topic: string, payload: string, qos?: 0 | 1) => Effect.Effect<void>
  /** Subscriptions are renewed by mqtt.js after every reconnect. */
  readonly subscribe: (topics: ReadonlyArray<string>, qos?: 0 | 1) => Effect.Effect<void, PublishFailed>
  /** Waits for the first connection, failing if the broker refuses or does not answer in time. */
  readonly awaitConnected: (timeout: Duration.Input) => Effect.Effect<void, ConnectFailed>
  /**
   * Waits for the outcome of the first attempt: connected, or failed in a way worth retrying (then retries go on
   * in the background, each logged); fails with `AuthRefused` / `BrokerUnreachable` when retrying cannot help.
   */
  readonly awaitFirstAttempt: Effect.Effect<void, ConnectFailed>
  readonly isConnected: Effect.Effect<boolean>
}

/** The URL with any `user:password@` removed, for messages and logs. */
export const safeUrl = (url: string): string => url.replace(/\/\/[^@/]*@/, "//")

// CONNACK 4/5 (MQTT 3.1.1) and 134/135 (MQTT 5): bad user name or password, not authorised.
const refusedCodes = new Set<unknown>([4, 5, 134, 135])
type ClientError = Error & { readonly code?: unknown }
const isAuthRefusal = (error: ClientError): boolean => refusedCodes.has(error.code)
const isTlsRejection = (error: ClientError): boolean =>
  typeof error.code === "string" && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(error.code)
const describe = (error: ClientError): string =>
  typeof error.code === "string" && !error.message.includes(error.code)
    ? `${error.code}: ${error.message}`
    : error.message

// mqtt.js formats a `debug` line for every packet even when nobody listens (2–3 % of a fleet command's CPU in the
// profile, bench/fleet.md); it keeps its own only when asked for with DEBUG=mqttjs*.
const mqttDebug = /mqttjs/.test(process.env.DEBUG ?? "")
const noLog = (): void => {}

const clientOptions = (options: ConnectOptions): IClientOptions => {
  const tls = options.tls
  return {
    clientId: options.clientId,
    // The stream builder is wrapped before the first connection (`withoutNagle`), so `make` connects by hand.
    manualConnect: true,
    ...(mqttDebug ? {} : { log: noLog }),
    clean: true,
    keepalive: options.keepaliveSeconds ?? 60,
    reconnectPeriod: Duration.toMillis(Duration.fromInputUnsafe(options.reconnectPeriod ?? "1 second")),
    connectTimeout: Duration.toMillis(Duration.fromInputUnsafe(options.connectTimeout ?? "10 seconds")),
    // A refusal after the first connection may be a broker being reconfigured: keep trying, with the backoff.
    reconnectOnConnackError: true,
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

/** What the connection reports about itself, logged by one fiber (mqtt.js calls back outside any effect). */
type Status =
  | { readonly _tag: "AttemptFailed"; readonly attempt: number; readonly reason: string; readonly retryInMs: number }
  | { readonly _tag: "Lost"; readonly reason: string; readonly retryInMs: number }
  | { readonly _tag: "Reconnected"; readonly attempts: number }
  | { readonly _tag: "SendFailed"; readonly topic: string; readonly reason: string }

const logStatus = (url: string, clientId: string) =>
  Effect.fn("MqttConnection.logStatus")(function* (status: Status) {
    const retry = (ms: number) => Duration.format(Duration.millis(ms))
    if (status._tag === "AttemptFailed") {
      yield* Effect.logWarning(
        `mqtt ${clientId}: cannot connect to ${url} (${status.reason}); attempt ${status.attempt} failed, next in ${retry(status.retryInMs)}`
      )
    } else if (status._tag === "Lost") {
      yield* Effect.logWarning(
        `mqtt ${clientId}: lost the connection to ${url} (${status.reason}); reconnecting in ${retry(status.retryInMs)}`
      )
    } else if (status._tag === "SendFailed") {
      yield* Effect.logWarning(`mqtt ${clientId}: could not publish on ${status.topic}: ${status.reason}`)
    } else {
      yield* Effect.logInfo(`mqtt ${clientId}: connected to ${url} after ${status.attempts} attempts`)
    }
  })

/** Deferreds and counters one client's callbacks update; read by the effects of `make`. */
interface Progress {
  readonly firstConnect: Deferred.Deferred<void, ConnectFailed>
  readonly firstAttempt: Deferred.Deferred<void, ConnectFailed>
  readonly inbound: Queue.Queue<Inbound>
  readonly status: Queue.Queue<Status>
  /** Connected right now (as far as our own events tell). */
  up: boolean
  connects: number
  /** Failed attempts since the last connection. */
  failedAttempts: number
  lastError: string
  ending: boolean
}

interface Backoff {
  readonly first: number
  readonly max: number
}

const onConnect = (client: MqttClient, progress: Progress, backoff: Backoff) => () => {
  if (progress.failedAttempts > 0) {
    Queue.offerUnsafe(progress.status, { _tag: "Reconnected", attempts: progress.failedAttempts + 1 })
  }
  progress.up = true
  progress.connects++
  progress.failedAttempts = 0
  client.options.reconnectPeriod = backoff.first
  Queue.offerUnsafe(progress.inbound, { _tag: "Connected", reconnect: progress.connects > 1 })
  Deferred.doneUnsafe(progress.firstConnect, Effect.void)
  Deferred.doneUnsafe(progress.firstAttempt, Effect.void)
}

/** Before the first connection, a refusal or an untrusted certificate fails it: waiting would not heal either. */
const onFirstError = (url: string, progress: Progress, error: ClientError): void => {
  const refused = isAuthRefusal(error)
  if (!refused && !isTlsRejection(error)) return
  const failure = refused
    ? new AuthRefused({ url, reason: describe(error) })
    : new BrokerUnreachable({ url, reason: describe(error) })
  Deferred.doneUnsafe(progress.firstConnect, Effect.fail(failure))
  Deferred.doneUnsafe(progress.firstAttempt, Effect.fail(failure))
}

/** Wires mqtt.js's events to the queues and deferreds, with the doubling backoff between attempts. */
const watch = (client: MqttClient, url: string, progress: Progress, backoff: Backoff): void => {
  let lastFailure: ClientError | undefined
  client.on("connect", () => {
    lastFailure = undefined
    onConnect(client, progress, backoff)()
  })
  client.on("message", (topic, payload) => {
    Queue.offerUnsafe(progress.inbound, { _tag: "Message", topic, payload: payload.toString("utf8") })
  })
  client.on("error", (error: ClientError) => {
    lastFailure = error
    progress.lastError = describe(error)
    if (progress.connects === 0) onFirstError(url, progress, error)
  })
  // mqtt.js's own close handler (registered first) has armed the next attempt with the current period; the
  // period doubles for the one after.
  client.on("close", () => {
    if (progress.ending) return
    const retryInMs = client.options.reconnectPeriod ?? backoff.first
    const reason = lastFailure === undefined ? "connection closed" : describe(lastFailure)
    lastFailure = undefined
    if (progress.up) {
      progress.up = false
      Queue.offerUnsafe(progress.inbound, { _tag: "Disconnected" })
      Queue.offerUnsafe(progress.status, { _tag: "Lost", reason, retryInMs })
    } else {
      progress.failedAttempts++
      Queue.offerUnsafe(progress.status, { _tag: "AttemptFailed", attempt: progress.failedAttempts, reason, retryInMs })
      client.options.reconnectPeriod = Math.min(retryInMs * 2, backoff.max)
    }
    Deferred.doneUnsafe(progress.firstAttempt, Effect.void)
  })
}

/** Publishing and subscribing through one mqtt.js client, as effects. */
const clientCalls = (client: MqttClient, progress: Progress) => {
  const publish = (topic: string, payload: string, qos: 0 | 1 = 1) =>
    Effect.callback<void, PublishFailed>((resume) => {
      client.publish(topic, payload, { qos }, (error) =>
        resume(error ? Effect.fail(new PublishFailed({ topic, reason: error.message })) : Effect.void)
      )
    })
  const send = (topic: string, payload: string, qos: 0 | 1 = 1) =>
    Effect.sync(() => {
      client.publish(topic, payload, { qos }, (error) => {
        if (error) Queue.offerUnsafe(progress.status, { _tag: "SendFailed", topic, reason: error.message })
      })
    })
  const subscribe = (topics: ReadonlyArray<string>, qos: 0 | 1 = 1) =>
    Effect.callback<void, PublishFailed>((resume) => {
      client.subscribe([...topics], { qos }, (error) =>
        resume(error ? Effect.fail(new PublishFailed({ topic: topics.join(","), reason: error.message })) : Effect.void)
      )
    })
  return { publish, send, subscribe }
}

/** A connection through mqtt.js (the live `Connector`). */
export const makeLive = Effect.fn("MqttConnection.connect")(function* (
  options: ConnectOptions
): Effect.fn.Return<MqttConnection, BrokerUnreachable, Scope.Scope> {
  const url = safeUrl(options.url)
  const opts = yield* Effect.try({
    try: () => clientOptions(options),
    catch: (cause) => new BrokerUnreachable({ url, reason: `TLS files: ${String(cause)}` })
  })
  const progress: Progress = {
    firstConnect: yield* Deferred.make<void, ConnectFailed>(),
    firstAttempt: yield* Deferred.make<void, ConnectFailed>(),
    inbound: yield* Queue.unbounded<Inbound>(),
    status: yield* Queue.unbounded<Status>(),
    up: false,
    connects: 0,
    failedAttempts: 0,
    lastError: "no answer",
    ending: false
  }
  yield* Effect.forkScoped(
    Effect.forever(Effect.flatMap(Queue.take(progress.status), logStatus(url, options.clientId)))
  )
  const backoff = {
    first: opts.reconnectPeriod ?? 1000,
    max: Math.max(
      opts.reconnectPeriod ?? 1000,
      Duration.toMillis(Duration.fromInputUnsafe(options.maxReconnectPeriod ?? "30 seconds"))
    )
  }
  const client: MqttClient = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const c = connect(options.url, opts)
      withoutNagle(c)
      watch(c, url, progress, backoff)
      c.connect()
      return c
    }),
    (c) =>
      Effect.callback<void>((resume) => {
        progress.ending = true
        c.end(false, {}, () => resume(Effect.void))
      }).pipe(
        Effect.timeout("2 seconds"),
        Effect.catch(() => Effect.sync(() => c.end(true))),
        Effect.andThen(Queue.shutdown(progress.inbound))
      )
  )
  const { publish, send, subscribe } = clientCalls(client, progress)
  const awaitConnected = (timeout: Duration.Input) =>
    Deferred.await(progress.firstConnect).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.suspend(() => Effect.fail(new BrokerUnreachable({ url, reason: progress.lastError })))
      })
    )
  return {
    clientId: options.clientId,
    url,
    inbound: progress.inbound,
    publish,
    send,
    subscribe,
    awaitConnected,
    awaitFirstAttempt: Deferred.await(progress.firstAttempt),
    isConnected: Effect.sync(() => client.connected)
  }
})

/**
 * How connections are made: mqtt.js unless a layer says otherwise (`layerMemory` in unit tests). A reference with
 * the live connector as its default, so the operator, the agent and the commander need no extra layer to run.
 */
export const Connector = Context.Reference<{
  readonly connect: (options: ConnectOptions) => Effect.Effect<MqttConnection, BrokerUnreachable, Scope.Scope>
}>("@testbed/fleet/MqttConnection/Connector", { defaultValue: () => ({ connect: makeLive }) })

/** One connection as a scoped resource, through the `Connector` in context (mqtt.js by default). */
export const make = Effect.fn("MqttConnection.make")(function* (
  options: ConnectOptions
): Effect.fn.Return<MqttConnection, BrokerUnreachable, Scope.Scope> {
  const connector = yield* Connector
  return yield* connector.connect(options)
})

export { MemoryBroker } from "./internal/memoryBroker.ts"

/**
 * Every connection made in this layer's scope goes to one broker in memory (topics with `+`/`#`, wills on
 * `MemoryBroker.drop`), for unit tests of what talks MQTT; `MemoryBroker` is the test's handle on it.
 */
export const layerMemory: Layer.Layer<MemoryBroker> = Layer.effectContext(
  Effect.sync(() => {
    const memory = MemoryBrokerImpl.make()
    return Context.make(Connector, { connect: memory.connect }).pipe(Context.add(MemoryBroker, memory.broker))
  })
)
