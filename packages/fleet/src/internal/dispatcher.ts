// The operator's single inbound fiber: registrations and acks, answers matched to waiting steps, running
// notices, lost agents, command loader messages, the feedback file, and resends after a reconnect.
import { EventBus } from "@testbed/events"
import { Clock, Deferred, Duration, Effect, FileSystem, Option, Queue, Result, Schema, type Scope } from "effect"
import type * as MqttConnection from "../MqttConnection.ts"
import * as Protocol from "../Protocol.ts"
import * as Security from "../Security.ts"

export class NoAgentsRegistered extends Schema.TaggedError<NoAgentsRegistered>()("NoAgentsRegistered", {
  waitedMs: Schema.Finite
}) {
  override get message(): string {
    return `no agent registered within ${Math.round(this.waitedMs / 1000)} s`
  }
}

export type Reply =
  | { readonly _tag: "Response"; readonly response: Protocol.ResponseMessage }
  | { readonly _tag: "Lost" }

export interface Tracked {
  readonly agent: string
  readonly command: string
  /** Publishes the command again (same id, freshly signed) after a reconnect or a re-registration. */
  readonly resend: Effect.Effect<void>
  readonly reply: Deferred.Deferred<Reply>
  readonly onRunning: Effect.Effect<void>
}

export interface Dispatcher {
  readonly registered: ReadonlySet<string>
  readonly lost: ReadonlySet<string>
  readonly track: (commandId: string, tracked: Tracked) => void
  readonly untrack: (commandId: string) => void
  readonly noAgents: (waited: Duration.Duration) => Effect.Effect<never, NoAgentsRegistered>
}

export interface DispatcherOptions {
  readonly connection: MqttConnection.MqttConnection
  readonly topics: Protocol.Topics
  readonly signing: Security.Signing
  readonly receiveCommands: boolean
  readonly feedbackFile?: string
  readonly onResponse?: (response: Protocol.ResponseMessage) => Effect.Effect<void>
  readonly onLoaderCommand: (agent: string, command: string, commandId: string) => Effect.Effect<void>
}

/** The original's six fields first and in its order (`output` always present), then testbed's. */
export const feedbackLine = (response: Protocol.ResponseMessage): string => {
  const { client_id, command, start_time, end_time, output, error, ...extra } = response
  return JSON.stringify({ client_id, command, start_time, end_time, output: output ?? "", error, ...extra })
}

// An agent id is what the original sends raw: refuse anything that could not be one.
const validId = (id: string): boolean => id.length > 0 && id.length <= 256 && !/[\u0000-\u001f|]/.test(id)

export const makeDispatcher = (
  options: DispatcherOptions
): Effect.Effect<Dispatcher, never, Scope.Scope | EventBus.EventBus | FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const bus = yield* EventBus.EventBus
    const fs = yield* FileSystem.FileSystem
    const { connection, topics } = options
    const registered = new Set<string>()
    const lost = new Set<string>()
    const pending = new Map<string, Tracked>()
    const loaderSeen = new Set<string>()
    const staleRetries = new Map<string, number>()
    const publish = (topic: string, payload: string) =>
      Effect.forkChild(connection.publish(topic, payload, 1).pipe(Effect.ignore))

    const findTracked = (response: {
      readonly client_id: string
      readonly command: string
      readonly command_id?: string
    }) => {
      if (response.command_id !== undefined) {
        const byId = pending.get(response.command_id)
        if (byId !== undefined) return Option.some([response.command_id, byId] as const)
      }
      // Old agents (and plain mode) carry no id: the oldest waiting step of that agent with that command.
      for (const entry of pending) {
        if (entry[1].agent === response.client_id && entry[1].command === response.command) return Option.some(entry)
      }
      return Option.none()
    }

    const writeFeedback = (response: Protocol.ResponseMessage) =>
      options.feedbackFile === undefined
        ? Effect.void
        : fs
            .writeFileString(options.feedbackFile, `${feedbackLine(response)}\n`, { flag: "a" })
            .pipe(Effect.catch((e) => Effect.logWarning(`operator: cannot write feedback: ${e.message}`)))

    let refusedRegistrations = 0
    // With a secret, only a signed registration names an agent; in compat mode the payload is the raw id.
    const registrationId = (payload: string) =>
      Effect.gen(function* () {
        if (options.signing._tag === "Compat") return Option.some(payload)
        const decoded = Protocol.decodeRegistration(payload)
        const now = yield* Clock.currentTimeMillis
        const verdict = Option.match(decoded, {
          onNone: () => Result.fail<Security.Refusal>("unsigned"),
          onSome: (message) => Security.verifyRegistration(options.signing, message, now)
        })
        if (Result.isSuccess(verdict) && Option.isSome(decoded)) return Option.some(decoded.value.client_id)
        const reason = Result.isFailure(verdict) ? verdict.failure : "unsigned"
        refusedRegistrations++
        // Counted and rate-limited: a flood of forged registrations must not flood the log or the event log too.
        if (refusedRegistrations > 5 && refusedRegistrations % 1000 !== 0) return Option.none<string>()
        yield* Effect.logWarning(`operator: ignored a ${reason} registration (${refusedRegistrations} so far)`)
        yield* bus.emit({
          type: "agent.registration_refused",
          entityType: "agent",
          entityId: Option.match(decoded, { onNone: () => "unknown", onSome: (m) => m.client_id.slice(0, 256) }),
          data: { reason, refusedSoFar: refusedRegistrations }
        })
        return Option.none<string>()
      })

    const onRegistration = (payload: string) =>
      Effect.gen(function* () {
        const claimed = yield* registrationId(payload)
        if (Option.isNone(claimed)) return
        const id = claimed.value
        if (!validId(id)) return yield* Effect.logWarning("operator: ignored a malformed registration")
        const known = registered.has(id)
        registered.add(id)
        lost.delete(id)
        // Acks are resent on every registration: the original acked only the first and a lost ack stranded the agent.
        yield* publish(topics.ack, id)
        if (known) {
          for (const tracked of pending.values()) if (tracked.agent === id) yield* tracked.resend
          return
        }
        yield* Effect.logInfo(`operator: registered ${id}`)
        yield* bus.emit({ type: "agent.registered", entityType: "agent", entityId: id, data: {} })
      })

    const onResponse = (payload: string) =>
      Effect.gen(function* () {
        const decoded = Protocol.decodeResponse(payload)
        if (Option.isNone(decoded)) return yield* Effect.logWarning("operator: ignored a malformed response")
        const response = decoded.value
        const found = findTracked(response)
        // A copy of our own command delayed past the agent's skew window (an MQTT redelivery after a reconnect, an
        // overloaded host): the command itself is still wanted, so send it again freshly signed, a few times.
        if (Option.isSome(found) && response.status === "refused" && response.refusal?.startsWith("stale")) {
          const [commandId, tracked] = found.value
          const tries = (staleRetries.get(commandId) ?? 0) + 1
          staleRetries.set(commandId, tries)
          if (tries <= 3) return yield* tracked.resend
        }
        yield* writeFeedback(response)
        if (options.onResponse) yield* options.onResponse(response)
        if (Option.isSome(found)) {
          staleRetries.delete(found.value[0])
          pending.delete(found.value[0])
          yield* Deferred.succeed(found.value[1].reply, { _tag: "Response", response })
        }
      })

    const onLost = (payload: string) =>
      Effect.gen(function* () {
        const decoded = Protocol.decodeLost(payload)
        if (Option.isNone(decoded)) return
        for (const id of decoded.value.client_ids) {
          if (!registered.has(id)) continue
          lost.add(id)
          yield* Effect.logWarning(`operator: lost agent ${id}`)
          yield* bus.emit({ type: "agent.lost", entityType: "agent", entityId: id, data: {} })
          for (const [commandId, tracked] of pending) {
            if (tracked.agent !== id) continue
            pending.delete(commandId)
            yield* Deferred.succeed(tracked.reply, { _tag: "Lost" })
          }
        }
      })

    const onLoader = (payload: string) =>
      Effect.gen(function* () {
        const decoded = Protocol.decodeLoader(payload)
        if (Option.isNone(decoded)) return yield* Effect.logWarning("operator: ignored a malformed loader message")
        const message = decoded.value
        const now = yield* Clock.currentTimeMillis
        const verdict = Security.verify(options.signing, message, now)
        if (Result.isFailure(verdict)) {
          return yield* Effect.logWarning(`operator: refused a loader command (${verdict.failure})`)
        }
        const base = message.command_id ?? `loader-${now.toString(36)}-${Math.random().toString(36).slice(2, 6)}`
        if (loaderSeen.has(base)) return yield* Effect.logWarning("operator: refused a replayed loader command")
        loaderSeen.add(base)
        const targets = message.client_id.toLowerCase() === "all" ? [...registered] : [message.client_id]
        for (const agent of targets) yield* options.onLoaderCommand(agent, message.command, `${base}/${agent}`)
      })

    const subscribeAll = connection
      .subscribe([
        topics.registration,
        topics.response,
        Protocol.runningTopic(topics),
        Protocol.lostTopic(topics),
        ...(options.receiveCommands ? [topics.commandLoader] : [])
      ])
      .pipe(Effect.timeout("10 seconds"), Effect.ignore)

    const handle = (inbound: MqttConnection.Inbound) =>
      Effect.gen(function* () {
        if (inbound._tag === "Connected") {
          yield* subscribeAll
          // The broker may have lost what was in flight: send every waiting command again (agents de-duplicate).
          if (inbound.reconnect) for (const tracked of pending.values()) yield* tracked.resend
          return
        }
        const { topic, payload } = inbound
        if (topic === topics.registration) yield* onRegistration(payload)
        else if (topic === topics.response) yield* onResponse(payload)
        else if (topic === Protocol.runningTopic(topics)) {
          const notice = Protocol.decodeRunning(payload)
          if (Option.isSome(notice)) yield* pending.get(notice.value.command_id)?.onRunning ?? Effect.void
        } else if (topic === Protocol.lostTopic(topics)) yield* onLost(payload)
        else if (topic === topics.commandLoader && options.receiveCommands) yield* onLoader(payload)
      })
    // Subscribed before `start` returns, so nothing sent right after is missed (reconnects subscribe again).
    yield* subscribeAll
    // Whatever has arrived is handled in one go: one wake-up per batch, not per message.
    const step = Effect.flatMap(Queue.takeAll(connection.inbound), (batch) =>
      Effect.forEach(batch, handle, { discard: true })
    )
    yield* Effect.forkScoped(Effect.forever(step))

    return {
      registered,
      lost,
      track: (commandId, tracked) => {
        pending.set(commandId, tracked)
        // The agent may have vanished already: answer at once rather than wait for the timeout.
        if (lost.has(tracked.agent)) {
          pending.delete(commandId)
          Deferred.doneUnsafe(tracked.reply, Effect.succeed({ _tag: "Lost" }))
        }
      },
      untrack: (commandId) => {
        pending.delete(commandId)
        staleRetries.delete(commandId)
      },
      noAgents: (waited) => Effect.fail(new NoAgentsRegistered({ waitedMs: Duration.toMillis(waited) }))
    }
  })
