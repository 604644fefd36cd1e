// The agent's protocol state, owned by one dispatch fiber: acks, who-is-there queries, command decisions
// (signature, replay, staleness, allowlist, size), each agent id's commands in order, and the registration loop.
import { type EventBus, Ids } from "@testbed/events"
import { Clock, Duration, Effect, type Latch, Option, Queue, Result, type Scope } from "effect"
import type { AgentOptions, AgentStats } from "../Agent.ts"
import type * as MqttConnection from "../MqttConnection.ts"
import * as Protocol from "../Protocol.ts"
import * as Security from "../Security.ts"
import {
  dispatchResult,
  type Execution,
  encode,
  failedToStart,
  interruptedResponse,
  refusedResponse
} from "./execution.ts"
import * as DelayLine from "./delayLine.ts"
import { makeRefusals, sampled } from "./refusals.ts"

export interface AgentStateOptions {
  readonly options: AgentOptions
  readonly topics: Protocol.Topics
  readonly session: string
  readonly connection: MqttConnection.MqttConnection
  readonly execution: Execution
  readonly bus: EventBus.EventBus["Service"]
  /** Open while every id is acknowledged. */
  readonly allAcked: Latch.Latch
}

export interface AgentState {
  readonly stats: Effect.Effect<AgentStats>
  /** Handles everything that arrives on the connection, in order. */
  readonly dispatch: Effect.Effect<never>
  /** Registers every id not yet acknowledged, at once after a (re)connect and then every `interval`. */
  readonly registerUntilAcknowledged: (interval: Duration.Input) => Effect.Effect<never>
}

type Identified = Protocol.CommandMessage & { readonly command_id: string }
type Remembered = { readonly state: "running" } | { readonly state: "done"; readonly payload: string }

/** What the agent does with a command addressed to one of its ids. */
type Decision =
  | {
      readonly _tag: "Refuse"
      readonly reason: string
      /** By policy (an answer like any other), not for the signature. */
      readonly remember: boolean
      /** The id is echoed only when it is the signer's (an unsigned id is anyone's: it must not close a step). */
      readonly echoId: boolean
    }
  | { readonly _tag: "Duplicate"; readonly payload: Option.Option<string> }
  | { readonly _tag: "TooLarge"; readonly bytes: number }
  /** The agent's queue is full. */
  | { readonly _tag: "Busy" }
  | { readonly _tag: "Run" }

// An operator asking who is there gets one registration per agent id and second at most, however often it asks:
// anyone on the broker may ask, and the answers go to every subscriber.
const queryAnswerInterval = 1000

/** One agent connection's state, owned by its dispatch fiber (and its workers, for what they remember). */
interface State {
  readonly input: AgentStateOptions
  readonly options: AgentOptions
  readonly topics: Protocol.Topics
  readonly connection: MqttConnection.MqttConnection
  readonly execution: Execution
  readonly signing: Security.Signing
  readonly ids: ReadonlySet<string>
  readonly allow: ReturnType<typeof Security.allowlist>
  readonly memorySize: number
  readonly maxCommandBytes: number
  readonly refusals: ReturnType<typeof makeRefusals>
  readonly idGenerator: Ids.Ids["Service"]
  /** Plain counters, bumped synchronously: every command on the shared topic may reach every agent connection. */
  readonly counters: { -readonly [K in keyof AgentStats]: number }
  readonly acked: Set<string>
  readonly memories: Map<string, Map<string, Remembered>>
  /** Wakes the registration loop (after a connect). */
  readonly kick: Queue.Queue<void>
  /** Running notices, each due `runningNoticeAfter` after its command started. */
  readonly notices: DelayLine.DelayLine
  /** `runningNoticeAfter` is zero: every command is announced as it starts. */
  readonly noticeAtOnce: boolean
  /** The shared topic always (old and compat operators send there), and each id's own topic in native mode. */
  readonly commandTopics: ReadonlySet<string>
  readonly lastQueryAnswer: Map<string, number>
  /** Each agent id's commands: the one running and those waiting behind it. */
  readonly lanes: Map<string, Lane>
  /** Where a command that waits (on a process) gets its fiber: closing it interrupts and answers the command. */
  readonly scope: Scope.Scope
}

/** One agent id's commands, run one at a time in order, like the original. */
interface Lane {
  running: boolean
  /** Waiting behind the running one; at most `memorySize` (a flood is answered, not queued without bound). */
  readonly waiting: Array<Identified>
}

// Handed to the client without waiting for the broker's acknowledgement (a timer and a fiber per message saved):
// mqtt.js keeps QoS 1 messages until acknowledged, across reconnects, and the connection logs any it loses.
const send = (st: State, topic: string, payload: string) => st.connection.send(topic, payload, 1)

const remember = (st: State, agentId: string, commandId: string, entry: Remembered) => {
  const memory = st.memories.get(agentId)!
  memory.delete(commandId)
  memory.set(commandId, entry)
  if (memory.size > st.memorySize) memory.delete(memory.keys().next().value!)
}

const runOne = Effect.fn("Agent.runCommand")(function* (st: State, id: string, message: Identified) {
  const { execution, topics, connection } = st
  const startMs = yield* Clock.currentTimeMillis
  // Informational only (the answer is what counts): QoS 0 spares the broker a stored message and an ack, and a
  // command that answers within `runningNoticeAfter` sends none (its answer says more, as soon). On the shared
  // delay line: no fiber or timer of its own per command. Signed only when sent: most commands never need it.
  const publishNotice = Effect.suspend(() => {
    const notice = Security.signRunning(st.signing, {
      client_id: id,
      command_id: message.command_id,
      command: message.command,
      start_time: Protocol.epochSeconds(startMs)
    })
    return connection.send(Protocol.runningTopic(topics), JSON.stringify(notice), 0)
  })
  // No delay asked: announced before the command starts, not whenever the line's fiber runs next.
  const announce = st.noticeAtOnce
    ? yield* Effect.as(publishNotice, DelayLine.done)
    : yield* st.notices.add(publishNotice)
  const payload = yield* dispatchResult(execution, id, message, startMs).pipe(
    Effect.onInterrupt(() =>
      Effect.gen(function* () {
        DelayLine.cancel(announce)
        const endMs = yield* Clock.currentTimeMillis
        const reply = encode(execution, interruptedResponse(id, message, startMs, endMs))
        // Stopping: wait (briefly) until the broker has it, before the connection closes.
        yield* connection.publish(topics.response, reply, 1).pipe(Effect.timeout("2 seconds"), Effect.ignore)
      })
    )
  )
  DelayLine.cancel(announce)
  remember(st, id, message.command_id, { state: "done", payload })
  st.counters.executed++
  yield* send(st, topics.response, payload)
})

// A defect in one command's handling is logged and the lane goes on: it must never stop serving.
const runGuarded = (st: State, id: string, message: Identified) =>
  Effect.catchDefect(runOne(st, id, message), (defect) =>
    Effect.logError(`agent ${id}: a command's handling failed: ${String(defect)}`)
  )

/** Runs the lane's commands until none is waiting. */
const drain = Effect.fnUntraced(function* (st: State, lane: Lane, id: string, first: Identified) {
  let next: Identified | undefined = first
  while (next !== undefined) {
    yield* runGuarded(st, id, next)
    next = lane.waiting.shift()
  }
  lane.running = false
})

/**
 * Starts a command at once on the dispatch fiber's turn, or queues it behind the agent's running one. The fiber
 * starts immediately: a command that answers without waiting (an in-process runner) is done before this returns and
 * its fiber is never scheduled; only one that waits on a process stays behind, in the agent's scope.
 */
const enqueue = Effect.fnUntraced(function* (st: State, id: string, message: Identified) {
  const lane = st.lanes.get(id)!
  if (lane.running) return void lane.waiting.push(message)
  lane.running = true
  yield* Effect.forkIn(drain(st, lane, id, message), st.scope, { startImmediately: true })
})

const answer = Effect.fnUntraced(function* (
  st: State,
  agentId: string,
  commandId: string,
  response: Protocol.ResponseMessage
) {
  const payload = encode(st.execution, response)
  remember(st, agentId, commandId, { state: "done", payload })
  yield* send(st, st.topics.response, payload)
})

const refuse = Effect.fn("Agent.refuse")(function* (
  st: State,
  agentId: string,
  message: Protocol.CommandMessage,
  reason: string
) {
  st.counters.refused++
  const now = yield* Clock.currentTimeMillis
  yield* Effect.logWarning(`agent ${agentId}: refused command (${reason})`)
  const commandId = message.command_id === undefined ? null : Protocol.capEcho(message.command_id, 256)
  yield* st.input.bus.emit({ type: "agent.command_refused", entityId: agentId, data: { commandId, reason } })
  const payload = encode(st.execution, refusedResponse(agentId, message, reason, now))
  yield* send(st, st.topics.response, payload)
  return payload
})

const refusal = (reason: string, remember: boolean, echoId: boolean): Decision => ({
  _tag: "Refuse",
  reason,
  remember,
  echoId
})

const decide = (
  st: State,
  agentId: string,
  message: Protocol.CommandMessage,
  commandId: string,
  now: number
): Decision => {
  const verdict = Security.authenticate(st.signing, message)
  if (Result.isFailure(verdict)) return refusal(`${verdict.failure}: the command is not correctly signed`, false, false)
  const seen = st.memories.get(agentId)!.get(commandId)
  // A resend (broker restart, operator reconnect) or a replay: never run twice; answer again if done.
  if (seen !== undefined)
    return { _tag: "Duplicate", payload: seen.state === "done" ? Option.some(seen.payload) : Option.none() }
  if (Security.isStale(st.signing, message, now)) {
    return refusal("stale: signed too long ago to tell from a replay", false, true)
  }
  if (!st.allow.allows(message.command)) {
    return refusal("not-allowed: the command is not in the allowlist", true, true)
  }
  const bytes = Buffer.byteLength(message.command, "utf8")
  if (bytes > st.maxCommandBytes) return { _tag: "TooLarge", bytes }
  return st.lanes.get(agentId)!.waiting.length >= st.memorySize ? { _tag: "Busy" } : { _tag: "Run" }
}

const act = Effect.fnUntraced(function* (st: State, agentId: string, message: Protocol.CommandMessage, now: number) {
  const commandId = message.command_id ?? st.idGenerator.unique(`${agentId}-${now}`)
  const identified: Identified = { ...message, command_id: commandId }
  const decision = decide(st, agentId, message, commandId, now)
  switch (decision._tag) {
    case "Refuse": {
      // A refusal by policy is an answer like any other: a resend of that id gets it again. A refusal of the
      // signature is not remembered, nor does it carry the id: anyone may have picked it.
      const { command_id: _unsigned, ...anonymous } = message
      const payload = yield* refuse(st, agentId, decision.echoId ? identified : anonymous, decision.reason)
      if (decision.remember) remember(st, agentId, commandId, { state: "done", payload })
      return
    }
    case "Duplicate":
      st.counters.duplicates++
      if (Option.isSome(decision.payload)) yield* send(st, st.topics.response, decision.payload.value)
      return
    case "TooLarge": {
      const reason = `the command is ${decision.bytes} bytes, more than this agent runs (${st.maxCommandBytes})`
      return yield* answer(
        st,
        agentId,
        commandId,
        failedToStart(agentId, identified, "CommandTooLarge", reason, now, now)
      )
    }
    case "Busy": {
      const reason = `${st.memorySize} commands are waiting already for this agent`
      return yield* answer(st, agentId, commandId, failedToStart(agentId, identified, "AgentBusy", reason, now, now))
    }
    case "Run":
      remember(st, agentId, commandId, { state: "running" })
      return yield* enqueue(st, agentId, identified)
  }
})

const onCommand = Effect.fnUntraced(function* (st: State, payload: string) {
  const decoded = Protocol.decodeCommand(st.execution.mode, payload)
  if (Option.isNone(decoded)) {
    const malformed = ++st.counters.malformed
    // Logged, counted, ignored: a flood of garbage must not flood the log too.
    if (sampled(malformed)) yield* Effect.logWarning(`agent: ignored a malformed command message (${malformed} so far)`)
    return
  }
  const message = decoded.value
  const targets =
    message.client_id.toLowerCase() === "all"
      ? st.options.ids
      : st.ids.has(message.client_id)
        ? [message.client_id]
        : []
  if (targets.length === 0) return void st.counters.ignored++
  const now = yield* Clock.currentTimeMillis
  for (const agentId of targets) yield* act(st, agentId, message, now)
})

const acknowledge = Effect.fn("Agent.acknowledge")(function* (st: State, id: string) {
  if (st.acked.has(id)) return
  st.acked.add(id)
  yield* st.input.bus.emit({ type: "agent.acknowledged", entityId: id, data: {} })
  if (st.acked.size === st.ids.size) yield* st.input.allAcked.open
})

// Compat: the raw id, as the original sends it. Signed: only an ack signed for this process's session counts, so
// nobody without the secret can stop an agent from registering (and so from being found).
const onAck = Effect.fn("Agent.onAck")(function* (st: State, payload: string) {
  if (st.signing._tag === "Compat") return st.ids.has(payload) ? yield* acknowledge(st, payload) : undefined
  const decoded = Protocol.decodeAck(payload)
  if (Option.isNone(decoded))
    return st.ids.has(payload) ? yield* st.refusals.report("ack", payload, "unsigned") : undefined
  const ack = decoded.value
  if (!st.ids.has(ack.client_id)) return
  const verdict = Security.verifyAck(st.signing, ack, st.input.session)
  if (Result.isFailure(verdict)) return yield* st.refusals.report("ack", ack.client_id, verdict.failure)
  yield* acknowledge(st, ack.client_id)
})

const register = Effect.fn("Agent.register")(function* (st: State, which: ReadonlyArray<string>) {
  const now = yield* Clock.currentTimeMillis
  for (const id of which) {
    yield* send(st, st.topics.registration, Security.registrationPayload(st.signing, id, st.input.session, now))
  }
})

const onQuery = Effect.fn("Agent.onQuery")(function* (st: State, payload: string) {
  const query = Protocol.decodeQuery(payload)
  const named = query.client_ids === undefined ? st.options.ids : query.client_ids.filter((id) => st.ids.has(id))
  const now = yield* Clock.currentTimeMillis
  const answering = named.filter(
    (id) => now - (st.lastQueryAnswer.get(id) ?? Number.NEGATIVE_INFINITY) >= queryAnswerInterval
  )
  for (const id of answering) st.lastQueryAnswer.set(id, now)
  yield* register(st, answering)
})

const registerOnce = Effect.fn("Agent.registerUntilAcknowledged")(function* (st: State, interval: Duration.Input) {
  yield* Queue.take(st.kick).pipe(Effect.timeoutOption(interval))
  if (st.acked.size < st.ids.size && (yield* st.connection.isConnected)) {
    yield* register(
      st,
      st.options.ids.filter((id) => !st.acked.has(id))
    )
  }
})

const onConnected = Effect.fn("Agent.onConnected")(function* (st: State) {
  // After a reconnect the operator may be new (or restarted): register again until acknowledged.
  st.acked.clear()
  yield* st.input.allAcked.close
  yield* st.connection
    .subscribe([...st.commandTopics, st.topics.ack, Protocol.queryTopic(st.topics)], 1)
    .pipe(Effect.timeout("10 seconds"), Effect.ignore)
  yield* Queue.offer(st.kick, undefined)
})

const handle = Effect.fnUntraced(function* (st: State, inbound: MqttConnection.Inbound) {
  if (inbound._tag === "Disconnected") return
  if (inbound._tag === "Connected") return yield* onConnected(st)
  if (inbound.topic === st.topics.ack) yield* onAck(st, inbound.payload)
  else if (st.commandTopics.has(inbound.topic)) yield* onCommand(st, inbound.payload)
  else if (inbound.topic === Protocol.queryTopic(st.topics)) yield* onQuery(st, inbound.payload)
})

// A JSON key could appear twice; only a plain miss is skipped, anything addressed to us is fully decoded. Done
// before any effect runs: with many agents most commands on the shared topic are for someone else.
const forSomeoneElse = (st: State, payload: string): boolean => {
  const addressee = Protocol.peekClientId(st.execution.mode, payload)
  return addressee !== undefined && !st.ids.has(addressee) && addressee.toLowerCase() !== "all"
}

const dispatchOne = (st: State, inbound: MqttConnection.Inbound) => {
  if (inbound._tag === "Message" && st.commandTopics.has(inbound.topic)) {
    st.counters.received++
    if (forSomeoneElse(st, inbound.payload)) {
      st.counters.ignored++
      return Effect.void
    }
  }
  return handle(st, inbound)
}

const commandTopicsOf = (options: AgentOptions, topics: Protocol.Topics): ReadonlySet<string> => {
  const placement = options.commandTopics ?? Protocol.defaultCommandTopics(options.signing._tag === "Signed")
  const own = placement === "per-agent" ? options.ids.map((id) => Protocol.agentCommandTopic(topics, id)) : []
  return new Set([topics.command, ...own.filter((topic): topic is string => topic !== undefined)])
}

// The per-message steps (handle, onCommand, act, answer) are `fnUntraced`: a span costs some 5 µs a call, and these
// run for every message on the shared topic (see bench/fleet.ts); what runs per command once decided
// (`Agent.runCommand`) is traced.
export const makeAgentState = Effect.fn("Agent.makeState")(function* (
  input: AgentStateOptions
): Effect.fn.Return<AgentState, never, Scope.Scope> {
  const { options, topics } = input
  const noticeAfter = Duration.fromInputUnsafe(options.runningNoticeAfter ?? "100 millis")
  const st: State = {
    input,
    options,
    topics,
    connection: input.connection,
    execution: input.execution,
    signing: options.signing,
    ids: new Set(options.ids),
    allow: Security.allowlist(options.allow),
    memorySize: options.memory ?? 10_000,
    maxCommandBytes: options.maxCommandBytes ?? 128 * 1024 - 1,
    refusals: makeRefusals(input.bus, "agent"),
    // Read once: `act` runs for every command.
    idGenerator: yield* Ids.Ids,
    counters: { received: 0, malformed: 0, ignored: 0, executed: 0, refused: 0, duplicates: 0 },
    acked: new Set(),
    memories: new Map(options.ids.map((id) => [id, new Map()])),
    kick: yield* Queue.unbounded<void>(),
    notices: yield* DelayLine.make(noticeAfter),
    noticeAtOnce: Duration.isZero(noticeAfter),
    commandTopics: commandTopicsOf(options, topics),
    lastQueryAnswer: new Map(),
    lanes: new Map(options.ids.map((id) => [id, { running: false, waiting: [] }])),
    scope: yield* Effect.scope
  }
  return {
    stats: Effect.sync(() => ({ ...st.counters })),
    // Whatever has arrived is handled in one go: one wake-up per batch, not per message.
    dispatch: Effect.forever(
      Effect.flatMap(Queue.takeAll(st.connection.inbound), (batch) =>
        Effect.forEach(batch, (inbound) => dispatchOne(st, inbound), { discard: true })
      )
    ),
    registerUntilAcknowledged: (interval) => Effect.forever(registerOnce(st, interval))
  }
})
