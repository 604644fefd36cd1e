// The agent's protocol state, owned by one dispatch fiber: acks, who-is-there queries, command decisions
// (signature, replay, staleness, allowlist, size), one worker per agent id, and the registration loop.
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
  | { readonly _tag: "Run" }

// An operator asking who is there gets one registration per agent id and second at most, however often it asks:
// anyone on the broker may ask, and the answers go to every subscriber.
const queryAnswerInterval = 1000

// The per-message steps (handle, onCommand, act, answer) are `fnUntraced`: a span costs some 5 µs a call, and these run for every
// message on the shared topic (see bench/fleet.ts); what runs per command once decided (`Agent.runCommand`) is traced.
export const makeAgentState = Effect.fn("Agent.makeState")(function* (
  input: AgentStateOptions
): Effect.fn.Return<AgentState, never, Scope.Scope> {
  const { options, topics, session, connection, execution, bus, allAcked } = input
  const signing = options.signing
  const ids = new Set(options.ids)
  const allow = Security.allowlist(options.allow)
  const memorySize = options.memory ?? 10_000
  const maxCommandBytes = options.maxCommandBytes ?? 128 * 1024 - 1
  const runningNoticeAfter = Duration.fromInputUnsafe(options.runningNoticeAfter ?? "100 millis")
  const refusals = makeRefusals(bus, "agent")
  // Read once: `act` runs for every command on the shared topic.
  const idGenerator = yield* Ids.Ids
  // Plain counters, bumped synchronously: every command on the shared topic reaches every agent connection.
  const counters: { -readonly [K in keyof AgentStats]: number } = {
    received: 0,
    malformed: 0,
    ignored: 0,
    executed: 0,
    refused: 0,
    duplicates: 0
  }
  const acked = new Set<string>()
  const memories = new Map<string, Map<string, Remembered>>(options.ids.map((id) => [id, new Map()]))
  const kick = yield* Queue.unbounded<void>()
  const notices = yield* DelayLine.make(runningNoticeAfter)
  const placement = options.commandTopics ?? Protocol.defaultCommandTopics(signing._tag === "Signed")
  // The shared topic always (old and compat operators send there), and each id's own topic in native mode.
  const ownTopics =
    placement === "per-agent"
      ? options.ids.flatMap((id) => {
          const topic = Protocol.agentCommandTopic(topics, id)
          return topic === undefined ? [] : [topic]
        })
      : []
  const commandTopics = new Set([topics.command, ...ownTopics])
  const lastQueryAnswer = new Map<string, number>()

  // Handed to the client without waiting for the broker's acknowledgement (a timer and a fiber per message saved):
  // mqtt.js keeps QoS 1 messages until acknowledged, across reconnects, and the connection logs any it loses.
  const send = (topic: string, payload: string) => connection.send(topic, payload, 1)

  const remember = (agentId: string, commandId: string, entry: Remembered) => {
    const memory = memories.get(agentId)!
    memory.delete(commandId)
    memory.set(commandId, entry)
    if (memory.size > memorySize) memory.delete(memory.keys().next().value!)
  }

  const runOne = Effect.fn("Agent.runCommand")(function* (id: string, message: Identified) {
    const startMs = yield* Clock.currentTimeMillis
    const notice = Security.signRunning(signing, {
      client_id: id,
      command_id: message.command_id,
      command: message.command,
      start_time: Protocol.epochSeconds(startMs)
    })
    // Informational only (the answer is what counts): QoS 0 spares the broker a stored message and an ack, and a
    // command that answers within `runningNoticeAfter` sends none (its answer says more, as soon). On the shared
    // delay line: no fiber or timer of its own per command.
    const announce = yield* notices.add(connection.send(Protocol.runningTopic(topics), JSON.stringify(notice), 0))
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
    remember(id, message.command_id, { state: "done", payload })
    counters.executed++
    yield* send(topics.response, payload)
  })

  // One queue and worker per agent id: each agent runs its commands one at a time, in order, like the original.
  // A defect in one command's handling is logged and the worker goes on: it must never stop serving.
  const queues = new Map<string, Queue.Queue<Identified>>()
  for (const id of options.ids) {
    const queue = yield* Queue.unbounded<Identified>()
    queues.set(id, queue)
    const worker = Queue.take(queue).pipe(
      Effect.flatMap((message) => runOne(id, message)),
      Effect.catchDefect((defect) => Effect.logError(`agent ${id}: a command's handling failed: ${String(defect)}`)),
      Effect.forever
    )
    yield* Effect.forkScoped(worker)
  }

  const answer = Effect.fnUntraced(function* (agentId: string, commandId: string, response: Protocol.ResponseMessage) {
    const payload = encode(execution, response)
    remember(agentId, commandId, { state: "done", payload })
    yield* send(topics.response, payload)
  })

  const refuse = Effect.fn("Agent.refuse")(function* (
    agentId: string,
    message: Protocol.CommandMessage,
    reason: string
  ) {
    counters.refused++
    const now = yield* Clock.currentTimeMillis
    yield* Effect.logWarning(`agent ${agentId}: refused command (${reason})`)
    const commandId = message.command_id === undefined ? null : Protocol.capEcho(message.command_id, 256)
    yield* bus.emit({
      type: "agent.command_refused",
      entityId: agentId,
      data: { commandId, reason }
    })
    const payload = encode(execution, refusedResponse(agentId, message, reason, now))
    yield* send(topics.response, payload)
    return payload
  })

  const decide = (agentId: string, message: Protocol.CommandMessage, commandId: string, now: number): Decision => {
    const verdict = Security.authenticate(signing, message)
    if (Result.isFailure(verdict)) {
      return {
        _tag: "Refuse",
        reason: `${verdict.failure}: the command is not correctly signed`,
        remember: false,
        echoId: false
      }
    }
    const seen = memories.get(agentId)!.get(commandId)
    // A resend (broker restart, operator reconnect) or a replay: never run twice; answer again if done.
    if (seen !== undefined)
      return { _tag: "Duplicate", payload: seen.state === "done" ? Option.some(seen.payload) : Option.none() }
    if (Security.isStale(signing, message, now)) {
      return {
        _tag: "Refuse",
        reason: "stale: signed too long ago to tell from a replay",
        remember: false,
        echoId: true
      }
    }
    if (!allow.allows(message.command)) {
      return {
        _tag: "Refuse",
        reason: "not-allowed: the command is not in the allowlist",
        remember: true,
        echoId: true
      }
    }
    const bytes = Buffer.byteLength(message.command, "utf8")
    return bytes > maxCommandBytes ? { _tag: "TooLarge", bytes } : { _tag: "Run" }
  }

  const act = Effect.fnUntraced(function* (agentId: string, message: Protocol.CommandMessage, now: number) {
    const commandId = message.command_id ?? idGenerator.unique(`${agentId}-${now}`)
    const identified: Identified = { ...message, command_id: commandId }
    const decision = decide(agentId, message, commandId, now)
    switch (decision._tag) {
      case "Refuse": {
        // A refusal by policy is an answer like any other: a resend of that id gets it again. A refusal of the
        // signature is not remembered, nor does it carry the id: anyone may have picked it.
        const { command_id: _unsigned, ...anonymous } = message
        const payload = yield* refuse(agentId, decision.echoId ? identified : anonymous, decision.reason)
        if (decision.remember) remember(agentId, commandId, { state: "done", payload })
        return
      }
      case "Duplicate":
        counters.duplicates++
        if (Option.isSome(decision.payload)) yield* send(topics.response, decision.payload.value)
        return
      case "TooLarge": {
        const reason = `the command is ${decision.bytes} bytes, more than this agent runs (${maxCommandBytes})`
        return yield* answer(
          agentId,
          commandId,
          failedToStart(agentId, identified, "CommandTooLarge", reason, now, now)
        )
      }
      case "Run":
        remember(agentId, commandId, { state: "running" })
        return yield* Queue.offer(queues.get(agentId)!, identified)
    }
  })

  const onCommand = Effect.fnUntraced(function* (payload: string) {
    const decoded = Protocol.decodeCommand(execution.mode, payload)
    if (Option.isNone(decoded)) {
      const malformed = ++counters.malformed
      // Logged, counted, ignored: a flood of garbage must not flood the log too.
      if (sampled(malformed))
        yield* Effect.logWarning(`agent: ignored a malformed command message (${malformed} so far)`)
      return
    }
    const message = decoded.value
    const targets =
      message.client_id.toLowerCase() === "all" ? options.ids : ids.has(message.client_id) ? [message.client_id] : []
    if (targets.length === 0) return void counters.ignored++
    const now = yield* Clock.currentTimeMillis
    for (const agentId of targets) yield* act(agentId, message, now)
  })

  const acknowledge = Effect.fn("Agent.acknowledge")(function* (id: string) {
    if (acked.has(id)) return
    acked.add(id)
    yield* bus.emit({ type: "agent.acknowledged", entityId: id, data: {} })
    if (acked.size === ids.size) yield* allAcked.open
  })

  // Compat: the raw id, as the original sends it. Signed: only an ack signed for this process's session counts, so
  // nobody without the secret can stop an agent from registering (and so from being found).
  const onAck = Effect.fn("Agent.onAck")(function* (payload: string) {
    if (signing._tag === "Compat") return ids.has(payload) ? yield* acknowledge(payload) : undefined
    const decoded = Protocol.decodeAck(payload)
    if (Option.isNone(decoded)) return ids.has(payload) ? yield* refusals.report("ack", payload, "unsigned") : undefined
    const ack = decoded.value
    if (!ids.has(ack.client_id)) return
    const verdict = Security.verifyAck(signing, ack, session)
    if (Result.isFailure(verdict)) return yield* refusals.report("ack", ack.client_id, verdict.failure)
    yield* acknowledge(ack.client_id)
  })

  const register = Effect.fn("Agent.register")(function* (which: ReadonlyArray<string>) {
    const now = yield* Clock.currentTimeMillis
    for (const id of which) yield* send(topics.registration, Security.registrationPayload(signing, id, session, now))
  })

  const onQuery = Effect.fn("Agent.onQuery")(function* (payload: string) {
    const query = Protocol.decodeQuery(payload)
    const named = query.client_ids === undefined ? options.ids : query.client_ids.filter((id) => ids.has(id))
    const now = yield* Clock.currentTimeMillis
    const answering = named.filter(
      (id) => now - (lastQueryAnswer.get(id) ?? Number.NEGATIVE_INFINITY) >= queryAnswerInterval
    )
    for (const id of answering) lastQueryAnswer.set(id, now)
    yield* register(answering)
  })

  const registerUntilAcknowledged = (interval: Duration.Input) =>
    Effect.forever(
      Effect.gen(function* () {
        yield* Queue.take(kick).pipe(Effect.timeoutOption(interval))
        if (acked.size < ids.size && (yield* connection.isConnected)) {
          yield* register(options.ids.filter((id) => !acked.has(id)))
        }
      })
    )

  const handle = Effect.fnUntraced(function* (inbound: MqttConnection.Inbound) {
    if (inbound._tag === "Disconnected") return
    if (inbound._tag === "Connected") {
      // After a reconnect the operator may be new (or restarted): register again until acknowledged.
      acked.clear()
      yield* allAcked.close
      yield* connection
        .subscribe([...commandTopics, topics.ack, Protocol.queryTopic(topics)], 1)
        .pipe(Effect.timeout("10 seconds"), Effect.ignore)
      return yield* Queue.offer(kick, undefined)
    }
    if (inbound.topic === topics.ack) yield* onAck(inbound.payload)
    else if (commandTopics.has(inbound.topic)) yield* onCommand(inbound.payload)
    else if (inbound.topic === Protocol.queryTopic(topics)) yield* onQuery(inbound.payload)
  })

  // A JSON key could appear twice; only a plain miss is skipped, anything addressed to us is fully decoded. Done
  // before any effect runs: with many agents most commands on the shared topic are for someone else.
  const forSomeoneElse = (payload: string): boolean => {
    const addressee = Protocol.peekClientId(execution.mode, payload)
    return addressee !== undefined && !ids.has(addressee) && addressee.toLowerCase() !== "all"
  }

  // Whatever has arrived is handled in one go: one wake-up per batch, not per message.
  const dispatch = Effect.forever(
    Effect.flatMap(Queue.takeAll(connection.inbound), (batch) =>
      Effect.forEach(
        batch,
        (inbound) => {
          if (inbound._tag === "Message" && commandTopics.has(inbound.topic)) {
            counters.received++
            if (forSomeoneElse(inbound.payload)) {
              counters.ignored++
              return Effect.void
            }
          }
          return handle(inbound)
        },
        { discard: true }
      )
    )
  )

  return {
    stats: Effect.sync(() => ({ ...counters })),
    dispatch,
    registerUntilAcknowledged
  }
})
