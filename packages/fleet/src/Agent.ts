/**
 * The agent (the original's `sut.py`): registers until acknowledged, runs the commands addressed to it
 * through the CommandRunner, and answers with the compatible payload plus exit code, id and timing. It
 * survives any payload, refuses what its allowlist or signature policy forbids, and de-duplicates by
 * command id. Several agent ids may share one connection (one subscription, one process).
 */
import { type Command, CommandRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Clock, Duration, Effect, Fiber, identity, Option, Queue, Ref, Result, Schedule, type Scope } from "effect"
import { dispatchResult, type Execution, interruptedResponse, refusedResponse } from "./internal/execution.ts"
import * as MqttConnection from "./MqttConnection.ts"
import * as Protocol from "./Protocol.ts"
import * as Security from "./Security.ts"

export interface AgentOptions {
  /** The agent ids this connection serves (usually one; the benchmark hosts many). */
  readonly ids: ReadonlyArray<string>
  readonly connection: Omit<MqttConnection.ConnectOptions, "clientId" | "will">
  readonly topics?: Protocol.Topics
  /** Default json. Plain mode cannot carry signatures. */
  readonly mode?: Protocol.Mode
  readonly signing: Security.Signing
  /** Commands this agent may run; absent: any. */
  readonly allow?: ReadonlyArray<string>
  /** Upper bound for any command; a command's own `timeout` may only lower it. Default 10 minutes. */
  readonly commandTimeout?: Duration.Input
  /** The original resends its registration every 5 seconds until acknowledged. */
  readonly registrationInterval?: Duration.Input
  /** Bytes of stdout and of stderr sent back. Default 1 MiB. */
  readonly maxOutputBytes?: number
  /** A command still running after this long is announced on the running topic. Default 100 ms. */
  readonly runningNoticeAfter?: Duration.Input
  /** How many command ids each agent remembers for de-duplication. Default 10000. */
  readonly memory?: number
  /** Builds the command run for a message; default `sh -c` with the timeout (a hook for in-process runners). */
  readonly toCommand?: (
    command: string,
    options: Omit<Command.Command, "program" | "args" | "shell">
  ) => Command.Command
}

export interface AgentStats {
  readonly received: number
  readonly malformed: number
  readonly ignored: number
  readonly executed: number
  readonly refused: number
  readonly duplicates: number
}

export interface Agent {
  readonly ids: ReadonlyArray<string>
  /** Unique per process, so two agents with one id never knock each other off the broker. */
  readonly mqttClientId: string
  readonly stats: Effect.Effect<AgentStats>
  /** Waits until the operator has acknowledged every id. */
  readonly awaitAcknowledged: Effect.Effect<void>
}

const randomSuffix = (): string => Math.random().toString(36).slice(2, 10)

type Memory = Map<string, { readonly state: "running" } | { readonly state: "done"; readonly payload: string }>

/** Starts an agent in the Scope; closing the Scope ends running commands and reports them as interrupted. */
export const start = (
  options: AgentOptions
): Effect.Effect<
  Agent,
  MqttConnection.BrokerUnreachable,
  Scope.Scope | CommandRunner.CommandRunner | EventBus.EventBus
> =>
  Effect.gen(function* () {
    const runner = yield* CommandRunner.CommandRunner
    const bus = yield* EventBus.EventBus
    const topics = options.topics ?? Protocol.defaultTopics
    const mode = options.mode ?? "json"
    const allow = Security.allowlist(options.allow)
    const memorySize = options.memory ?? 10_000
    const runningNoticeAfter = Duration.fromInputUnsafe(options.runningNoticeAfter ?? "100 millis")
    const ids = new Set(options.ids)
    const mqttClientId = `testbed-agent-${options.ids[0] ?? "none"}-${randomSuffix()}`
    // Plain counters, bumped synchronously: every command on the shared topic reaches every agent connection.
    const counters: { -readonly [K in keyof AgentStats]: number } = {
      received: 0,
      malformed: 0,
      ignored: 0,
      executed: 0,
      refused: 0,
      duplicates: 0
    }
    const count = (key: keyof AgentStats) => Effect.sync(() => void counters[key]++)
    const acked = new Set<string>()
    const allAcked = yield* Ref.make(false)
    const memories = new Map<string, Memory>(options.ids.map((id) => [id, new Map()]))

    const connection = yield* MqttConnection.make({
      ...options.connection,
      clientId: mqttClientId,
      will: { topic: Protocol.lostTopic(topics), payload: JSON.stringify({ client_ids: options.ids }), qos: 1 }
    })
    const send = (topic: string, payload: string) =>
      connection.publish(topic, payload, 1).pipe(
        Effect.timeout("30 seconds"),
        Effect.catch((e) => Effect.logWarning(`agent: could not publish on ${topic}: ${e.message}`))
      )
    const execution: Execution = {
      runner,
      mode,
      commandTimeout: Duration.fromInputUnsafe(options.commandTimeout ?? "10 minutes"),
      maxOutputBytes: options.maxOutputBytes ?? 1024 * 1024,
      ...(options.toCommand !== undefined ? { toCommand: options.toCommand } : {})
    }

    const remember = (agentId: string, commandId: string, entry: Memory extends Map<string, infer V> ? V : never) => {
      const memory = memories.get(agentId)!
      memory.delete(commandId)
      memory.set(commandId, entry)
      if (memory.size > memorySize) memory.delete(memory.keys().next().value!)
    }

    // One queue and worker per agent id: each agent runs its commands one at a time, in order, like the original.
    const queues = new Map<string, Queue.Queue<Protocol.CommandMessage & { readonly command_id: string }>>()
    for (const id of options.ids) {
      const queue = yield* Queue.unbounded<Protocol.CommandMessage & { readonly command_id: string }>()
      queues.set(id, queue)
      const worker = Effect.gen(function* () {
        const message = yield* Queue.take(queue)
        const startMs = yield* Clock.currentTimeMillis
        const notice: Protocol.RunningNotice = {
          client_id: id,
          command_id: message.command_id,
          command: message.command,
          start_time: Protocol.epochSeconds(startMs)
        }
        // Informational only (the answer is what counts): QoS 0 spares the broker a stored message and an ack, and
        // a command that answers within `runningNoticeAfter` sends none (its answer says more, as soon).
        const announce = yield* Effect.forkChild(
          Effect.ignore(connection.publish(Protocol.runningTopic(topics), JSON.stringify(notice), 0)).pipe(
            Duration.isZero(runningNoticeAfter) ? identity : Effect.delay(runningNoticeAfter)
          )
        )
        const payload = yield* dispatchResult(execution, id, message, startMs).pipe(
          Effect.onInterrupt(() =>
            Effect.gen(function* () {
              const endMs = yield* Clock.currentTimeMillis
              const reply = Protocol.encodeResponse(mode, interruptedResponse(id, message, startMs, endMs))
              yield* send(topics.response, reply).pipe(Effect.timeout("2 seconds"), Effect.ignore)
            })
          )
        )
        yield* Fiber.interrupt(announce)
        remember(id, message.command_id, { state: "done", payload })
        yield* count("executed")
        yield* send(topics.response, payload)
      }).pipe(Effect.forever)
      yield* Effect.forkScoped(worker)
    }

    const refuse = (agentId: string, message: Protocol.CommandMessage, reason: string) =>
      Effect.gen(function* () {
        yield* count("refused")
        const now = yield* Clock.currentTimeMillis
        yield* Effect.logWarning(`agent ${agentId}: refused command (${reason})`)
        yield* bus.emit({
          type: "agent.command_refused",
          entityType: "agent",
          entityId: agentId,
          data: { commandId: message.command_id ?? null, reason }
        })
        yield* send(topics.response, Protocol.encodeResponse(mode, refusedResponse(agentId, message, reason, now)))
      })

    // A JSON key could appear twice; only a plain miss is skipped, anything addressed to us is fully decoded. Done
    // before any effect runs: with many agents most commands on the shared topic are for someone else.
    const forSomeoneElse = (payload: string): boolean => {
      const addressee = Protocol.peekClientId(mode, payload)
      return addressee !== undefined && !ids.has(addressee) && addressee.toLowerCase() !== "all"
    }

    const onCommand = (payload: string) =>
      Effect.gen(function* () {
        const decoded = Protocol.decodeCommand(mode, payload)
        if (Option.isNone(decoded)) {
          const malformed = ++counters.malformed
          // Logged, counted, ignored: a flood of garbage must not flood the log too.
          if (malformed <= 5 || malformed % 1000 === 0) {
            yield* Effect.logWarning(`agent: ignored a malformed command message (${malformed} so far)`)
          }
          return
        }
        const message = decoded.value
        const targets =
          message.client_id.toLowerCase() === "all"
            ? options.ids
            : ids.has(message.client_id)
              ? [message.client_id]
              : []
        if (targets.length === 0) return yield* count("ignored")
        const now = yield* Clock.currentTimeMillis
        for (const agentId of targets) {
          const verdict = Security.authenticate(options.signing, message)
          if (Result.isFailure(verdict)) {
            yield* refuse(agentId, message, `${verdict.failure}: the command is not correctly signed`)
            continue
          }
          const commandId = message.command_id ?? `${agentId}-${now}-${randomSuffix()}`
          const seen = memories.get(agentId)!.get(commandId)
          if (seen !== undefined) {
            // A resend (broker restart, operator reconnect) or a replay: never run twice; answer again if done.
            yield* count("duplicates")
            if (seen.state === "done") yield* send(topics.response, seen.payload)
            continue
          }
          if (Security.isStale(options.signing, message, now)) {
            yield* refuse(agentId, message, "stale: signed too long ago to tell from a replay")
            continue
          }
          if (!allow.allows(message.command)) {
            remember(agentId, commandId, { state: "running" })
            yield* refuse(
              agentId,
              { ...message, command_id: commandId },
              "not-allowed: the command is not in the allowlist"
            )
            continue
          }
          remember(agentId, commandId, { state: "running" })
          yield* Queue.offer(queues.get(agentId)!, { ...message, command_id: commandId })
        }
      })

    const register = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const id of options.ids) {
        if (!acked.has(id)) yield* send(topics.registration, Security.registrationPayload(options.signing, id, now))
      }
    })
    const kick = yield* Queue.unbounded<void>()
    const interval = options.registrationInterval ?? "5 seconds"
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.gen(function* () {
          yield* Queue.take(kick).pipe(Effect.timeoutOption(interval))
          if (acked.size < ids.size && (yield* connection.isConnected)) yield* register
        })
      )
    )

    const handle = (inbound: MqttConnection.Inbound) =>
      Effect.gen(function* () {
        if (inbound._tag === "Connected") {
          // After a reconnect the operator may be new (or restarted): register again until acknowledged.
          acked.clear()
          yield* Ref.set(allAcked, false)
          yield* connection.subscribe([topics.command, topics.ack], 1).pipe(Effect.timeout("10 seconds"), Effect.ignore)
          yield* Queue.offer(kick, undefined)
        } else if (inbound.topic === topics.ack) {
          if (ids.has(inbound.payload) && !acked.has(inbound.payload)) {
            acked.add(inbound.payload)
            yield* bus.emit({ type: "agent.acknowledged", entityType: "agent", entityId: inbound.payload, data: {} })
            if (acked.size === ids.size) yield* Ref.set(allAcked, true)
          }
        } else if (inbound.topic === topics.command) {
          yield* onCommand(inbound.payload)
        }
      })
    // Whatever has arrived is handled in one go: one wake-up per batch, not per message.
    const dispatch = Effect.forever(
      Effect.flatMap(Queue.takeAll(connection.inbound), (batch) =>
        Effect.forEach(
          batch,
          (inbound) => {
            if (inbound._tag === "Message" && inbound.topic === topics.command) {
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
    yield* Effect.forkScoped(dispatch)

    return {
      ids: options.ids,
      mqttClientId,
      stats: Effect.sync(() => ({ ...counters })),
      awaitAcknowledged: Effect.repeat(Ref.get(allAcked), {
        until: (done) => done,
        schedule: Schedule.spaced("20 millis")
      }).pipe(Effect.asVoid)
    }
  })

/** Runs an agent until interrupted (SIGINT/SIGTERM in the CLI). */
export const run = (
  options: AgentOptions
): Effect.Effect<never, MqttConnection.BrokerUnreachable, CommandRunner.CommandRunner | EventBus.EventBus> =>
  Effect.scoped(Effect.andThen(start(options), Effect.never))
