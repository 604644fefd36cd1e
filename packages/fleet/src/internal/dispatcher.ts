// The operator's single inbound fiber: registrations and acks, answers matched to waiting steps, running
// notices, lost agents (with a grace period, so a broker restart fails nothing), command loader messages, the
// feedback file, and resends after a reconnect. In signed mode nothing unsigned changes what it believes.
import { EventBus, ExitCode, Ids } from "@testbed/events"
import { Clock, Duration, Effect, Fiber, FileSystem, Option, Queue, Result, Runtime, Schema, type Scope } from "effect"
import type * as MqttConnection from "../MqttConnection.ts"
import * as Protocol from "../Protocol.ts"
import * as Security from "../Security.ts"
import { makeRefusals, sampled } from "./refusals.ts"

export class NoAgentsRegistered extends Schema.TaggedError<NoAgentsRegistered>()("NoAgentsRegistered", {
  waitedMs: Schema.Finite
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `no agent registered within ${Math.round(this.waitedMs / 1000)} s`
  }
}

export type Reply =
  | { readonly _tag: "Response"; readonly response: Protocol.ResponseMessage }
  | { readonly _tag: "Lost" }
  /** The step's deadline passed first. */
  | { readonly _tag: "NoAnswer" }

export interface Tracked {
  readonly agent: string
  readonly command: string
  /** Publishes the command again (same id, freshly signed) after a reconnect or a re-registration. */
  readonly resend: Effect.Effect<void>
  /** Ends the step with its answer (or a lost agent); called at most once by the dispatcher. */
  readonly settle: (reply: Reply) => Effect.Effect<void>
  readonly onRunning: Effect.Effect<void>
}

export interface Dispatcher {
  readonly registered: ReadonlySet<string>
  /** Agents gone for longer than the grace period: their steps end as `agent_lost`. */
  readonly lost: ReadonlySet<string>
  /** Waits for the command's answer; false (not tracked) when its agent is lost already. */
  readonly track: (commandId: string, tracked: Tracked) => boolean
  readonly untrack: (commandId: string) => void
  /** Completes at the next new registration (whatever has registered already is in `registered`). */
  readonly nextRegistration: Effect.Effect<void>
  readonly noAgents: (waited: Duration.Duration) => Effect.Effect<never, NoAgentsRegistered>
}

export interface DispatcherOptions {
  readonly connection: MqttConnection.MqttConnection
  readonly topics: Protocol.Topics
  readonly signing: Security.Signing
  readonly receiveCommands: boolean
  /** How long an agent reported gone may take to come back (counted while the operator is connected). */
  readonly lostGrace: Duration.Duration
  readonly feedbackFile?: string
  readonly onResponse?: (response: Protocol.ResponseMessage) => Effect.Effect<void>
  readonly onLoaderCommand: (agent: string, command: string, commandId: string) => Effect.Effect<void>
}

/** The original's six fields first and in its order (`output` always present), then testbed's. */
export const feedbackLine = (response: Protocol.ResponseMessage): string => {
  const { client_id, command, start_time, end_time, output, error, signature: _signature, ...extra } = response
  return JSON.stringify({ client_id, command, start_time, end_time, output: output ?? "", error, ...extra })
}

const queryInterval = 1000

// An agent id is what the original sends raw: refuse anything that could not be one.
const validId = (id: string): boolean => id.length > 0 && id.length <= 256 && !/[\u0000-\u001f|]/.test(id)

/** Remembers the last `size` keys: answers already taken, loader ids already forwarded. */
const boundedSet = (size: number) => {
  const keys = new Set<string>()
  return {
    has: (key: string) => keys.has(key),
    add: (key: string) => {
      keys.add(key)
      if (keys.size > size) keys.delete(keys.values().next().value!)
    }
  }
}

/** The operator's beliefs about its agents and its waiting steps, owned by the one inbound fiber. */
interface DispatcherState {
  readonly options: DispatcherOptions
  readonly bus: EventBus.EventBus["Service"]
  readonly fs: FileSystem.FileSystem
  readonly scope: Scope.Scope
  readonly signed: boolean
  readonly refusals: ReturnType<typeof makeRefusals>
  readonly registered: Set<string>
  /** The session each agent last registered with: only its own will counts. */
  readonly sessions: Map<string, string>
  readonly lost: Set<string>
  /** Agents reported gone, waiting for them to come back: the timer that gives up on each. */
  readonly suspects: Map<string, Fiber.Fiber<void>>
  readonly pending: Map<string, Tracked>
  readonly answered: ReturnType<typeof boundedSet>
  readonly loaderSeen: ReturnType<typeof boundedSet>
  readonly staleRetries: Map<string, number>
  /** Signalled at each new registration. */
  readonly registrations: Queue.Queue<void>
  connected: boolean
  malformed: number
  refusedRegistrations: number
  /** "Who is there?" at most once a second: what is asked meanwhile is merged into the next one. */
  readonly query: { last: number; pending: boolean; everyone: boolean; readonly asked: Set<string> }
}

const publishAcked = (st: DispatcherState, topic: string, payload: string) =>
  Effect.forkChild(st.options.connection.publish(topic, payload, 1).pipe(Effect.ignore))

const sendQuery = Effect.fn("Operator.sendQuery")(function* (st: DispatcherState) {
  const { query } = st
  const payload: Protocol.QueryMessage = query.everyone ? {} : { client_ids: [...query.asked] }
  query.pending = false
  query.everyone = false
  query.asked.clear()
  query.last = yield* Clock.currentTimeMillis
  const { connection, topics } = st.options
  yield* connection.publish(Protocol.queryTopic(topics), JSON.stringify(payload), 1).pipe(Effect.ignore)
})

// Every agent connection receives every query: at most one a second (what is asked during that second is sent at
// its end, merged), or a broker restart with 1,000 agents reported gone would fan out a million messages.
/** Who is there: every agent (`undefined`), or those named. */
const askWhoIsThere = Effect.fn("Operator.askWhoIsThere")(function* (
  st: DispatcherState,
  agents?: ReadonlyArray<string>
) {
  if (agents === undefined) st.query.everyone = true
  else for (const agent of agents) st.query.asked.add(agent)
  if (st.query.pending) return
  st.query.pending = true
  const wait = st.query.last + queryInterval - (yield* Clock.currentTimeMillis)
  yield* Effect.forkIn(wait > 0 ? Effect.delay(sendQuery(st), Duration.millis(wait)) : sendQuery(st), st.scope)
})

const findTracked = (st: DispatcherState, response: Protocol.ResponseMessage) => {
  if (response.command_id !== undefined) {
    const byId = st.pending.get(response.command_id)
    if (byId !== undefined) return Option.some([response.command_id, byId] as const)
  }
  // Old agents (and plain mode) carry no id: the oldest waiting step of that agent with that command. Never in
  // signed mode, where every answer carries the id it was signed for.
  if (st.signed) return Option.none()
  for (const entry of st.pending) {
    if (entry[1].agent === response.client_id && entry[1].command === response.command) return Option.some(entry)
  }
  return Option.none()
}

const writeFeedback = (st: DispatcherState, response: Protocol.ResponseMessage) =>
  st.options.feedbackFile === undefined
    ? Effect.void
    : st.fs
        .writeFileString(st.options.feedbackFile, `${feedbackLine(response)}\n`, { flag: "a" })
        .pipe(Effect.catch((e) => Effect.logWarning(`operator: cannot write feedback: ${e.message}`)))

const resendTo = (st: DispatcherState, agent: string) =>
  Effect.forEach(st.pending.values(), (tracked) => (tracked.agent === agent ? tracked.resend : Effect.void), {
    discard: true
  })

const giveUp = Effect.fn("Operator.agentLost")(function* (st: DispatcherState, agent: string) {
  st.suspects.delete(agent)
  st.lost.add(agent)
  yield* Effect.logWarning(
    `operator: lost agent ${agent}: it did not come back within ${Duration.format(st.options.lostGrace)}`
  )
  yield* st.bus.emit({ type: "agent.lost", entityId: agent, data: {} })
  for (const [commandId, tracked] of st.pending) {
    if (tracked.agent !== agent) continue
    st.pending.delete(commandId)
    yield* tracked.settle({ _tag: "Lost" })
  }
})

// The grace runs only while the operator is connected: a broker that is down says nothing about the agents. When
// it expires while disconnected, the reconnect starts it again.
const startGrace = Effect.fn("Operator.startGrace")(function* (st: DispatcherState, agent: string) {
  const timer = yield* Effect.forkIn(
    Effect.andThen(
      Effect.sleep(st.options.lostGrace),
      Effect.suspend(() => (st.connected ? giveUp(st, agent) : Effect.void))
    ),
    st.scope
  )
  st.suspects.set(agent, timer)
})

const suspect = Effect.fn("Operator.agentDisconnected")(function* (st: DispatcherState, agent: string) {
  if (st.suspects.has(agent) || st.lost.has(agent)) return
  const grace = st.options.lostGrace
  yield* Effect.logWarning(
    `operator: agent ${agent} disconnected; waiting up to ${Duration.format(grace)} for it to come back`
  )
  yield* st.bus.emit({ type: "agent.disconnected", entityId: agent, data: { graceMs: Duration.toMillis(grace) } })
  yield* startGrace(st, agent)
  // A live agent answers at once (a forged or replayed notice then costs nothing); a gone one cannot.
  yield* askWhoIsThere(st, [agent])
})

/** A sign of life from an agent reported gone: its waiting commands go out again (it de-duplicates). */
const reconnected = Effect.fn("Operator.agentReconnected")(function* (
  st: DispatcherState,
  agent: string,
  timer: Fiber.Fiber<void>
) {
  st.suspects.delete(agent)
  yield* Fiber.interrupt(timer)
  yield* Effect.logInfo(`operator: agent ${agent} is back`)
  yield* st.bus.emit({ type: "agent.reconnected", entityId: agent, data: {} })
  yield* resendTo(st, agent)
})

// Called for every answer: only a suspect agent costs more than a map lookup.
const alive = (st: DispatcherState, agent: string) => {
  const timer = st.suspects.get(agent)
  return timer === undefined ? Effect.void : reconnected(st, agent, timer)
}

// With a secret, only a signed registration names an agent; in compat mode the payload is the raw id.
const claimOf = Effect.fn("Operator.registrationClaim")(function* (st: DispatcherState, payload: string) {
  if (!st.signed) return Option.some({ id: payload, session: undefined as string | undefined })
  const decoded = Protocol.decodeRegistration(payload)
  const now = yield* Clock.currentTimeMillis
  const verdict = Option.match(decoded, {
    onNone: () => Result.fail<Security.Refusal>("unsigned"),
    onSome: (message) => Security.verifyRegistration(st.options.signing, message, now)
  })
  if (Result.isSuccess(verdict) && Option.isSome(decoded)) {
    return Option.some({ id: decoded.value.client_id, session: decoded.value.session as string | undefined })
  }
  const reason = Result.isFailure(verdict) ? verdict.failure : "unsigned"
  const refused = ++st.refusedRegistrations
  if (!sampled(refused)) return Option.none()
  yield* Effect.logWarning(`operator: ignored a ${reason} registration (${refused} so far)`)
  yield* st.bus.emit({
    type: "agent.registration_refused",
    entityId: Option.match(decoded, { onNone: () => "unknown", onSome: (m) => m.client_id.slice(0, 256) }),
    data: { reason, refusedSoFar: refused }
  })
  return Option.none()
})

const onRegistration = Effect.fn("Operator.onRegistration")(function* (st: DispatcherState, payload: string) {
  const claim = yield* claimOf(st, payload)
  if (Option.isNone(claim)) return
  const { id, session } = claim.value
  if (!validId(id)) return yield* Effect.logWarning("operator: ignored a malformed registration")
  const known = st.registered.has(id)
  st.registered.add(id)
  st.lost.delete(id)
  if (session !== undefined) st.sessions.set(id, session)
  // Acks are resent on every registration: the original acked only the first and a lost ack stranded the agent.
  yield* publishAcked(st, st.options.topics.ack, Security.ackPayload(st.options.signing, id, session ?? ""))
  if (st.suspects.has(id)) return yield* alive(st, id)
  if (known) return yield* resendTo(st, id)
  yield* Effect.logInfo(`operator: registered ${id}`)
  yield* st.bus.emit({ type: "agent.registered", entityId: id, data: {} })
  yield* Queue.offer(st.registrations, undefined)
})

/** Takes an answer once: later copies (resends answered from the agent's memory) change nothing. */
const settle = Effect.fnUntraced(function* (
  st: DispatcherState,
  response: Protocol.ResponseMessage,
  found: Option.Option<readonly [string, Tracked]>
) {
  if (response.command_id !== undefined && st.answered.has(response.command_id)) return
  if (response.command_id !== undefined && Option.isSome(found)) st.answered.add(response.command_id)
  yield* writeFeedback(st, response)
  if (st.options.onResponse) yield* st.options.onResponse(response)
  if (Option.isNone(found)) return
  const [commandId, tracked] = found.value
  st.staleRetries.delete(commandId)
  st.pending.delete(commandId)
  yield* tracked.settle({ _tag: "Response", response })
})

const onResponse = Effect.fnUntraced(function* (st: DispatcherState, payload: string) {
  const decoded = Protocol.decodeResponse(payload)
  if (Option.isNone(decoded)) {
    const malformed = ++st.malformed
    if (sampled(malformed)) yield* Effect.logWarning(`operator: ignored a malformed message (${malformed} so far)`)
    return
  }
  const response = decoded.value
  const verdict = Security.verifyResponse(st.options.signing, response)
  if (Result.isFailure(verdict)) return yield* st.refusals.report("response", response.client_id, verdict.failure)
  const found = findTracked(st, response)
  // Signed by some holder of the secret, but for a command sent to another agent: not that agent's answer.
  if (Option.isSome(found) && found.value[1].agent !== response.client_id) {
    return yield* st.refusals.report("response", response.client_id, `for a command sent to ${found.value[1].agent}`)
  }
  yield* alive(st, response.client_id)
  // A copy of our own command delayed past the agent's skew window (an MQTT redelivery after a reconnect, an
  // overloaded host): the command itself is still wanted, so send it again freshly signed, a few times.
  if (Option.isSome(found) && response.status === "refused" && response.refusal?.startsWith("stale")) {
    const [commandId, tracked] = found.value
    const tries = (st.staleRetries.get(commandId) ?? 0) + 1
    st.staleRetries.set(commandId, tries)
    if (tries <= 3) return yield* tracked.resend
  }
  yield* settle(st, response, found)
})

const onRunning = Effect.fnUntraced(function* (st: DispatcherState, payload: string) {
  const notice = Protocol.decodeRunning(payload)
  if (Option.isNone(notice)) return
  const verdict = Security.verifyRunning(st.options.signing, notice.value)
  if (Result.isFailure(verdict))
    return yield* st.refusals.report("running notice", notice.value.client_id, verdict.failure)
  const tracked = st.pending.get(notice.value.command_id)
  if (tracked === undefined || tracked.agent !== notice.value.client_id) return
  yield* alive(st, tracked.agent)
  yield* tracked.onRunning
})

const onLost = Effect.fn("Operator.onLost")(function* (st: DispatcherState, payload: string) {
  const decoded = Protocol.decodeLost(payload)
  if (Option.isNone(decoded)) return
  const notice = decoded.value
  const verdict = Security.verifyLost(st.options.signing, notice)
  const named = notice.client_ids[0] ?? "unknown"
  if (Result.isFailure(verdict)) return yield* st.refusals.report("lost notice", named, verdict.failure)
  for (const id of notice.client_ids) {
    if (!st.registered.has(id)) continue
    // The will of an agent process that has since been replaced (or an old will replayed) is not about this one.
    if (st.signed && st.sessions.get(id) !== notice.session) {
      yield* st.refusals.report("lost notice", id, "of another session of that agent")
      continue
    }
    yield* suspect(st, id)
  }
})

const onLoader = Effect.fn("Operator.onLoader")(function* (st: DispatcherState, payload: string) {
  const decoded = Protocol.decodeLoader(payload)
  if (Option.isNone(decoded)) return yield* Effect.logWarning("operator: ignored a malformed loader message")
  const message = decoded.value
  const now = yield* Clock.currentTimeMillis
  const verdict = Security.verifyLoader(st.options.signing, message, now)
  if (Result.isFailure(verdict)) {
    return yield* Effect.logWarning(`operator: refused a loader command (${verdict.failure})`)
  }
  const base = message.command_id ?? `loader-${now.toString(36)}-${yield* Ids.token(4)}`
  if (st.loaderSeen.has(base)) return yield* Effect.logWarning("operator: refused a replayed loader command")
  st.loaderSeen.add(base)
  const targets = message.client_id.toLowerCase() === "all" ? [...st.registered] : [message.client_id]
  for (const agent of targets) yield* st.options.onLoaderCommand(agent, message.command, `${base}/${agent}`)
})

const subscribeAll = Effect.fn("Operator.subscribe")(function* (st: DispatcherState) {
  const { connection, topics, receiveCommands } = st.options
  yield* connection
    .subscribe([
      topics.registration,
      topics.response,
      Protocol.runningTopic(topics),
      Protocol.lostTopic(topics),
      ...(receiveCommands ? [topics.commandLoader] : [])
    ])
    .pipe(Effect.timeout("10 seconds"), Effect.ignore)
})

const onConnected = Effect.fn("Operator.onConnected")(function* (st: DispatcherState, reconnect: boolean) {
  st.connected = true
  yield* subscribeAll(st)
  // Agents that registered with an operator before this one (or before its restart) answer this.
  yield* askWhoIsThere(st)
  if (!reconnect) return
  // The broker may have lost what was in flight: send every waiting command again (agents de-duplicate).
  yield* Effect.forEach(st.pending.values(), (tracked) => tracked.resend, { discard: true })
  // Agents reported gone while the broker went down get a full grace period from now to come back.
  for (const [agent, timer] of st.suspects) {
    yield* Fiber.interrupt(timer)
    yield* startGrace(st, agent)
  }
})

const handle = Effect.fnUntraced(function* (st: DispatcherState, inbound: MqttConnection.Inbound) {
  if (inbound._tag === "Connected") return yield* onConnected(st, inbound.reconnect)
  if (inbound._tag === "Disconnected") {
    st.connected = false
    return
  }
  const { topic, payload } = inbound
  const { topics } = st.options
  if (topic === topics.registration) yield* onRegistration(st, payload)
  else if (topic === topics.response) yield* onResponse(st, payload)
  else if (topic === Protocol.runningTopic(topics)) yield* onRunning(st, payload)
  else if (topic === Protocol.lostTopic(topics)) yield* onLost(st, payload)
  else if (topic === topics.commandLoader && st.options.receiveCommands) yield* onLoader(st, payload)
})

const track = (st: DispatcherState, commandId: string, tracked: Tracked): boolean => {
  // The agent may have vanished already: the caller answers at once rather than wait for the timeout.
  if (st.lost.has(tracked.agent)) return false
  st.pending.set(commandId, tracked)
  return true
}

// The per-message steps (handle, onResponse, onRunning, settle) are `fnUntraced`: a span costs some 5 µs a call, and
// these run for every answer (see bench/fleet.ts); rarer events (registrations, lost agents, loader) are traced.
export const makeDispatcher = Effect.fn("Operator.makeDispatcher")(function* (
  options: DispatcherOptions
): Effect.fn.Return<Dispatcher, never, Scope.Scope | EventBus.EventBus | FileSystem.FileSystem> {
  const bus = yield* EventBus.EventBus
  const st: DispatcherState = {
    options,
    bus,
    fs: yield* FileSystem.FileSystem,
    scope: yield* Effect.scope,
    signed: options.signing._tag === "Signed",
    refusals: makeRefusals(bus, "operator"),
    registered: new Set(),
    sessions: new Map(),
    lost: new Set(),
    suspects: new Map(),
    pending: new Map(),
    answered: boundedSet(10_000),
    loaderSeen: boundedSet(10_000),
    staleRetries: new Map(),
    registrations: yield* Queue.sliding<void>(1),
    connected: true,
    malformed: 0,
    refusedRegistrations: 0,
    query: { last: Number.NEGATIVE_INFINITY, pending: false, everyone: false, asked: new Set() }
  }
  // Subscribed before `start` returns, so nothing sent right after is missed (reconnects subscribe again).
  yield* subscribeAll(st)
  // Whatever has arrived is handled in one go: one wake-up per batch, not per message.
  const step = Effect.flatMap(Queue.takeAll(options.connection.inbound), (batch) =>
    Effect.forEach(batch, (inbound) => handle(st, inbound), { discard: true })
  )
  yield* Effect.forkScoped(Effect.forever(step))

  return {
    registered: st.registered,
    lost: st.lost,
    track: (commandId, tracked) => track(st, commandId, tracked),
    untrack: (commandId) => {
      st.pending.delete(commandId)
      st.staleRetries.delete(commandId)
    },
    nextRegistration: Queue.take(st.registrations),
    noAgents: (waited) => Effect.fail(new NoAgentsRegistered({ waitedMs: Duration.toMillis(waited) }))
  }
})
