/**
 * The operator (the original's `operator.py`): a registration window, pipelines run on all agents in
 * parallel where each step waits for its answer (never a fixed sleep), a state machine per agent and step,
 * a failure policy, live commands (stdin and the command loader topic), and the feedback file.
 */
import { EventBus, Ids, StateMachine } from "@testbed/events"
import { Clock, Deferred, Duration, Effect, type FileSystem, Option, Ref, type Scope, Stream } from "effect"
import type { FailurePolicy, Pipeline } from "./Config.ts"
import * as DelayLine from "./internal/delayLine.ts"
import { type Dispatcher, makeDispatcher, type NoAgentsRegistered, type Reply } from "./internal/dispatcher.ts"
import * as MqttConnection from "./MqttConnection.ts"
import * as Protocol from "./Protocol.ts"
import { type RunSummary, type StepReport, summarize } from "./RunSummary.ts"
import * as Security from "./Security.ts"
import { FleetStep, type StepOutcome } from "./StepMachine.ts"

export { NoAgentsRegistered } from "./internal/dispatcher.ts"

export interface OperatorOptions {
  readonly connection: Omit<MqttConnection.ConnectOptions, "clientId" | "will">
  readonly topics?: Protocol.Topics
  readonly mode?: Protocol.Mode
  /**
   * Where commands go: `per-agent` (each agent's own topic; the default when signed) or `shared` (the old protocol's
   * one topic, every agent connection receives every command; the default and the only choice in compat mode).
   */
  readonly commandTopics?: Protocol.CommandTopics
  readonly signing: Security.Signing
  /** The original waits this long after the first registration. Default 5 seconds. */
  readonly registrationTimeout?: Duration.Input
  /** Start as soon as this many agents have registered. */
  readonly expectAgents?: number
  /** How long to wait for the first agent at all. Default 5 minutes. */
  readonly firstRegistrationTimeout?: Duration.Input
  /** Per step; the agent is asked to end the command by then. Default 10 minutes. */
  readonly stepTimeout?: Duration.Input
  /** `stop` (default): a failed step ends that agent's pipeline; `continue`: the agent runs its next step. */
  readonly onFailure?: FailurePolicy
  /** Abort every agent's remaining steps once more than this percentage of agents has failed. */
  readonly abortAbovePercent?: number
  /** JSONL, one response per line, appended as each arrives. */
  readonly feedbackFile?: string
  /** Forward commands published on the command loader topic (the original's `receive_commands`). */
  readonly receiveCommands?: boolean
  /** Called with every response as it arrives (printing, progress). */
  readonly onResponse?: (response: Protocol.ResponseMessage) => Effect.Effect<void>
  /** Emit `step.*` events and keep a state machine per step (default true; the benchmark measures both). */
  readonly events?: boolean
  /**
   * How long an agent the broker reports gone (its MQTT will) may take to come back before its steps end as
   * `agent_lost`, counted while the operator itself is connected. A broker stopped with SIGTERM reports every
   * agent gone. Default 10 seconds.
   */
  readonly lostGrace?: Duration.Input
  /** How long to wait for the broker at start; a refusal of the credentials fails at once. Default 30 seconds. */
  readonly connectTimeout?: Duration.Input
}

export interface Operator {
  readonly mqttClientId: string
  readonly agents: Effect.Effect<ReadonlyArray<string>>
  /** The registration window; fails with `NoAgentsRegistered` when nobody came. */
  readonly awaitRegistrations: Effect.Effect<ReadonlyArray<string>, NoAgentsRegistered>
  /** Runs the pipelines one after the other, each on all registered agents in parallel. */
  readonly runPipelines: (pipelines: ReadonlyArray<Pipeline>) => Effect.Effect<RunSummary>
  /** Runs one command on the given agents (all registered by default) and waits for every answer. */
  readonly runCommand: (command: string, agents?: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<StepReport>>
  /** Real-time mode: each line goes to every agent until `exit` or the end of the stream. */
  readonly realtime: <E>(lines: Stream.Stream<string, E>) => Effect.Effect<ReadonlyArray<StepReport>, E>
  /** Steps started from the command loader topic, as they finished. */
  readonly loaderReports: Effect.Effect<ReadonlyArray<StepReport>>
}

const outcomeOf = (reply: Reply): { readonly state: StepOutcome; readonly trigger: string } => {
  if (reply._tag === "NoAnswer") return { state: "timed_out", trigger: "no answer before the step timeout" }
  if (reply._tag === "Lost") return { state: "agent_lost", trigger: "agent connection lost" }
  const r = reply.response
  if (r.status === "refused") return { state: "refused", trigger: r.refusal ?? "refused" }
  if (r.status === "timed_out" || r.timed_out === true) return { state: "timed_out", trigger: "agent ended it" }
  if (r.status === "interrupted") return { state: "agent_lost", trigger: "agent stopped" }
  // An old agent reports no exit code: an answer without "Failed to execute" counts as success, as it did.
  const ok =
    r.status !== undefined
      ? r.status === "succeeded"
      : r.exit_code === undefined || r.exit_code === null
        ? !r.error.startsWith("Failed to execute command")
        : r.exit_code === 0
  return { state: ok ? "succeeded" : "failed", trigger: `exit code ${r.exit_code ?? "unknown"}` }
}

const stepStatus = (state: StepOutcome) =>
  state === "succeeded"
    ? "passed"
    : state === "timed_out"
      ? "timeout"
      : state === "agent_lost"
        ? "interrupted"
        : "failed"

export const start = (
  options: OperatorOptions
): Effect.Effect<Operator, MqttConnection.ConnectFailed, Scope.Scope | EventBus.EventBus | FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const bus = yield* EventBus.EventBus
    if (options.signing._tag === "Compat") yield* Effect.logWarning(`operator: ${Security.compatWarning}`)
    const topics = options.topics ?? Protocol.defaultTopics
    const mode = options.mode ?? "json"
    const signed = options.signing._tag === "Signed"
    // Old agents listen on the shared topic only: compat mode keeps it whatever was asked.
    const placement = signed ? (options.commandTopics ?? "per-agent") : "shared"
    const withEvents = options.events ?? true
    const stepTimeout = Duration.fromInputUnsafe(options.stepTimeout ?? "10 minutes")
    // The agent ends the command at the step timeout; its answer then needs a moment to arrive.
    const waitLimit = Duration.sum(stepTimeout, Duration.seconds(5))
    const deadlines = yield* DelayLine.make(waitLimit)
    const mqttClientId = `testbed-operator-${yield* Ids.token(6)}`
    const connection = yield* MqttConnection.make({ ...options.connection, clientId: mqttClientId })
    // Agents may wait for a broker that is not up yet; an operator logs every failed attempt (the first one at
    // once) and gives up after `connectTimeout`, or at once when the broker refuses its credentials.
    yield* connection.awaitConnected(options.connectTimeout ?? "30 seconds")
    // Agents remember command ids across operator runs: a new run must never reuse one.
    const runTag = yield* Ids.token(6)
    let sequence = 0
    const loaderReports = yield* Ref.make<ReadonlyArray<StepReport>>([])

    const runStep = (pipeline: string, index: number, agent: string, command: string, commandId?: string) =>
      Effect.gen(function* () {
        const id = commandId ?? `${runTag}-${(sequence++).toString(36)}`
        const machine = withEvents ? yield* StateMachine.make(FleetStep, `${pipeline}/${agent}/${index}`) : undefined
        const move = (to: StepOutcome | "sent" | "running", trigger: string) =>
          machine === undefined ? Effect.void : Effect.ignore(machine.transition(to, trigger))
        const now = yield* Clock.currentTimeMillis
        const base = { client_id: agent, command, timeout: Duration.toSeconds(stepTimeout) }
        const topic = Protocol.commandTopicFor(topics, placement, agent)
        // Not waiting for the broker's acknowledgement: the answer is what the step waits for, and every waiting
        // command is resent after a reconnect or a re-registration.
        const publish = (at: number) =>
          connection.send(topic, Protocol.encodeCommand(mode, Security.sign(options.signing, base, id, at)), 1)
        // A resend is signed afresh (same id), or an agent would refuse it as stale after a long outage.
        const resend = Effect.flatMap(Clock.currentTimeMillis, publish)
        const reply = yield* Deferred.make<Reply>()
        dispatcher.track(id, { agent, command, resend, reply, onRunning: move("running", "agent started it") })
        const test = `fleet:${pipeline}:${agent}`
        if (withEvents) {
          yield* bus.emit({
            type: "step.started",
            entityId: `${test}/step/${index}`,
            data: { test, index, kind: "fleet", description: command }
          })
        }
        yield* move("sent", "published")
        yield* publish(now)
        // The deadline sits on the shared delay line (one fiber for every step), not on a timer of its own.
        const deadline = yield* deadlines.add(Deferred.succeed(reply, { _tag: "NoAnswer" }).pipe(Effect.asVoid))
        const answer = yield* Deferred.await(reply)
        DelayLine.cancel(deadline)
        dispatcher.untrack(id)
        const end = yield* Clock.currentTimeMillis
        const { state, trigger } = outcomeOf(answer)
        yield* move(state, trigger)
        if (withEvents) {
          yield* bus.emit({
            type: "step.finished",
            entityId: `${test}/step/${index}`,
            data: { test, index, kind: "fleet", status: stepStatus(state), durationMs: end - now, message: trigger }
          })
        }
        const response = answer._tag === "Response" ? answer.response : undefined
        return {
          pipeline,
          agent,
          index,
          command,
          commandId: id,
          state,
          exitCode: response?.exit_code ?? null,
          roundTripMs: end - now,
          response
        } satisfies StepReport
      }).pipe(Effect.provideService(EventBus.EventBus, bus))

    const scope = yield* Effect.scope
    const dispatcher: Dispatcher = yield* makeDispatcher({
      connection,
      topics,
      signing: options.signing,
      receiveCommands: options.receiveCommands ?? true,
      lostGrace: Duration.fromInputUnsafe(options.lostGrace ?? "10 seconds"),
      ...(options.feedbackFile !== undefined ? { feedbackFile: options.feedbackFile } : {}),
      ...(options.onResponse !== undefined ? { onResponse: options.onResponse } : {}),
      onLoaderCommand: (agent, command, commandId) =>
        Effect.asVoid(
          Effect.forkIn(
            Effect.flatMap(runStep("loader", sequence, agent, command, commandId), (report) =>
              Ref.update(loaderReports, (all) => [...all, report])
            ),
            scope
          )
        )
    })

    const skip = (pipeline: string, index: number, agent: string, command: string) =>
      Effect.gen(function* () {
        if (withEvents) {
          const machine = yield* StateMachine.make(FleetStep, `${pipeline}/${agent}/${index}`)
          yield* Effect.ignore(machine.transition("skipped", "earlier failure or abort"))
        }
        return {
          pipeline,
          agent,
          index,
          command,
          commandId: "",
          state: "skipped",
          exitCode: null,
          roundTripMs: 0,
          response: undefined
        } satisfies StepReport
      }).pipe(Effect.provideService(EventBus.EventBus, bus))

    const runPipelines = (pipelines: ReadonlyArray<Pipeline>) =>
      Effect.gen(function* () {
        const agents = [...dispatcher.registered]
        const failed = new Set<string>()
        let aborted = false
        const reports: Array<StepReport> = []
        for (const pipeline of pipelines) {
          const perAgent = yield* Effect.forEach(
            agents,
            (agent) =>
              Effect.gen(function* () {
                const out: Array<StepReport> = []
                let stopped = false
                for (let index = 0; index < pipeline.steps.length; index++) {
                  const command = pipeline.steps[index]!
                  if (aborted || stopped || dispatcher.lost.has(agent)) {
                    out.push(yield* skip(pipeline.name, index, agent, command))
                    continue
                  }
                  const report = yield* runStep(pipeline.name, index, agent, command)
                  out.push(report)
                  if (report.state !== "succeeded") {
                    failed.add(agent)
                    if ((options.onFailure ?? "stop") === "stop" || report.state === "agent_lost") stopped = true
                    const limit = options.abortAbovePercent
                    if (limit !== undefined && (failed.size / agents.length) * 100 > limit) aborted = true
                  }
                }
                return out
              }),
            { concurrency: "unbounded" }
          )
          reports.push(...perAgent.flat())
        }
        return summarize(agents, reports, aborted)
      })

    const runCommand = (command: string, agents?: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        const index = sequence
        return Effect.forEach(
          agents ?? [...dispatcher.registered],
          (agent) => runStep("realtime", index, agent, command),
          {
            concurrency: "unbounded"
          }
        )
      })

    // Woken by each new registration, not polled.
    const waitUntil = (condition: () => boolean) =>
      Effect.gen(function* () {
        while (!condition()) yield* dispatcher.nextRegistration
      })

    const awaitRegistrations = Effect.gen(function* () {
      const first = Duration.fromInputUnsafe(options.firstRegistrationTimeout ?? "5 minutes")
      const reached = () => options.expectAgents !== undefined && dispatcher.registered.size >= options.expectAgents
      const someone = yield* waitUntil(() => dispatcher.registered.size > 0).pipe(Effect.timeoutOption(first))
      if (Option.isNone(someone)) return yield* dispatcher.noAgents(first)
      yield* waitUntil(reached).pipe(Effect.timeoutOption(options.registrationTimeout ?? "5 seconds"))
      return [...dispatcher.registered]
    })

    const realtime = <E>(lines: Stream.Stream<string, E>) =>
      lines.pipe(
        Stream.map((line) => line.trim()),
        Stream.takeWhile((line) => line.toLowerCase() !== "exit"),
        Stream.filter((line) => line !== ""),
        Stream.mapEffect((line) => runCommand(line)),
        Stream.runCollect,
        Effect.map((all) => all.flat())
      )

    return {
      mqttClientId,
      agents: Effect.sync(() => [...dispatcher.registered]),
      awaitRegistrations,
      runPipelines,
      runCommand,
      realtime,
      loaderReports: Ref.get(loaderReports)
    }
  })
