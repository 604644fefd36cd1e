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

/** What every step of one operator reads: its options resolved, its connection, and its few counters. */
interface OperatorContext {
  readonly options: OperatorOptions
  readonly bus: EventBus.EventBus["Service"]
  readonly connection: MqttConnection.MqttConnection
  readonly dispatcher: Dispatcher
  readonly topics: Protocol.Topics
  readonly mode: Protocol.Mode
  readonly placement: Protocol.CommandTopics
  readonly withEvents: boolean
  readonly stepTimeout: Duration.Duration
  /** Every step's answer deadline (`stepTimeout` + 5 s), on one fiber. */
  readonly deadlines: DelayLine.DelayLine
  /** Agents remember command ids across operator runs: a new run must never reuse one. */
  readonly runTag: string
  /** Numbers the steps of this operator (command ids, live commands' index). */
  readonly sequence: { next: number }
  readonly loaderReports: Ref.Ref<ReadonlyArray<StepReport>>
}

interface StepInput {
  readonly pipeline: string
  readonly index: number
  readonly agent: string
  readonly command: string
  /** Given for loader commands (the commander's id); otherwise made from the run tag and sequence. */
  readonly commandId?: string
}

const machineOf = (ctx: OperatorContext, step: StepInput) =>
  ctx.withEvents
    ? StateMachine.make(FleetStep, `${step.pipeline}/${step.agent}/${step.index}`).pipe(
        Effect.provideService(EventBus.EventBus, ctx.bus)
      )
    : Effect.succeed(undefined)

const stepTest = (step: StepInput) => `fleet:${step.pipeline}:${step.agent}`

const stepStarted = (ctx: OperatorContext, step: StepInput) =>
  ctx.bus.emit({
    type: "step.started",
    entityId: `${stepTest(step)}/step/${step.index}`,
    data: { test: stepTest(step), index: step.index, kind: "fleet", description: step.command }
  })

const stepFinished = (ctx: OperatorContext, step: StepInput, state: StepOutcome, durationMs: number, message: string) =>
  ctx.bus.emit({
    type: "step.finished",
    entityId: `${stepTest(step)}/step/${step.index}`,
    data: { test: stepTest(step), index: step.index, kind: "fleet", status: stepStatus(state), durationMs, message }
  })

/**
 * Sends one step's command and waits for its answer, a lost agent, or the deadline. Untraced: it runs for every
 * step of every agent, and a span per call costs about as much as the rest of a fast step (bench/fleet.md).
 */
const runStep = Effect.fnUntraced(function* (ctx: OperatorContext, step: StepInput) {
  const { agent, command } = step
  const id = step.commandId ?? `${ctx.runTag}-${(ctx.sequence.next++).toString(36)}`
  const machine = yield* machineOf(ctx, step)
  const move = (to: StepOutcome | "sent" | "running", trigger: string) =>
    machine === undefined ? Effect.void : Effect.ignore(machine.transition(to, trigger))
  const now = yield* Clock.currentTimeMillis
  const base = { client_id: agent, command, timeout: Duration.toSeconds(ctx.stepTimeout) }
  const topic = Protocol.commandTopicFor(ctx.topics, ctx.placement, agent)
  // Not waiting for the broker's acknowledgement: the answer is what the step waits for, and every waiting
  // command is resent after a reconnect or a re-registration.
  const publish = (at: number) =>
    ctx.connection.send(topic, Protocol.encodeCommand(ctx.mode, Security.sign(ctx.options.signing, base, id, at)), 1)
  // A resend is signed afresh (same id), or an agent would refuse it as stale after a long outage.
  const resend = Effect.flatMap(Clock.currentTimeMillis, publish)
  const reply = yield* Deferred.make<Reply>()
  ctx.dispatcher.track(id, { agent, command, resend, reply, onRunning: move("running", "agent started it") })
  if (ctx.withEvents) yield* stepStarted(ctx, step)
  yield* move("sent", "published")
  yield* publish(now)
  // The deadline sits on the shared delay line (one fiber for every step), not on a timer of its own.
  const deadline = yield* ctx.deadlines.add(Deferred.succeed(reply, { _tag: "NoAnswer" }).pipe(Effect.asVoid))
  const answer = yield* Deferred.await(reply)
  DelayLine.cancel(deadline)
  ctx.dispatcher.untrack(id)
  const end = yield* Clock.currentTimeMillis
  const { state, trigger } = outcomeOf(answer)
  yield* move(state, trigger)
  if (ctx.withEvents) yield* stepFinished(ctx, step, state, end - now, trigger)
  const response = answer._tag === "Response" ? answer.response : undefined
  return {
    ...step,
    commandId: id,
    state,
    exitCode: response?.exit_code ?? null,
    roundTripMs: end - now,
    response
  } satisfies StepReport
})

/** A step not run (an earlier failure, an abort, a lost agent): recorded, and its machine moved to `skipped`. */
const skipStep = Effect.fnUntraced(function* (ctx: OperatorContext, step: StepInput) {
  const machine = yield* machineOf(ctx, step)
  if (machine !== undefined) yield* Effect.ignore(machine.transition("skipped", "earlier failure or abort"))
  return {
    ...step,
    commandId: "",
    state: "skipped",
    exitCode: null,
    roundTripMs: 0,
    response: undefined
  } satisfies StepReport
})

/** What one run of pipelines shares across its agents: who failed, and whether the run was aborted. */
interface RunState {
  readonly agents: ReadonlyArray<string>
  readonly failed: Set<string>
  aborted: boolean
}

/** One agent's steps of one pipeline, in order, under the failure policy and the abort threshold. */
const runAgentPipeline = Effect.fnUntraced(function* (
  ctx: OperatorContext,
  run: RunState,
  pipeline: Pipeline,
  agent: string
) {
  const out: Array<StepReport> = []
  let stopped = false
  for (let index = 0; index < pipeline.steps.length; index++) {
    const step = { pipeline: pipeline.name, index, agent, command: pipeline.steps[index]! }
    if (run.aborted || stopped || ctx.dispatcher.lost.has(agent)) {
      out.push(yield* skipStep(ctx, step))
      continue
    }
    const report = yield* runStep(ctx, step)
    out.push(report)
    if (report.state === "succeeded") continue
    run.failed.add(agent)
    if ((ctx.options.onFailure ?? "stop") === "stop" || report.state === "agent_lost") stopped = true
    const limit = ctx.options.abortAbovePercent
    if (limit !== undefined && (run.failed.size / run.agents.length) * 100 > limit) run.aborted = true
  }
  return out
})

const runPipelines = Effect.fn("Operator.runPipelines")(function* (
  ctx: OperatorContext,
  pipelines: ReadonlyArray<Pipeline>
) {
  const run: RunState = { agents: [...ctx.dispatcher.registered], failed: new Set(), aborted: false }
  const reports: Array<StepReport> = []
  for (const pipeline of pipelines) {
    const perAgent = yield* Effect.forEach(run.agents, (agent) => runAgentPipeline(ctx, run, pipeline, agent), {
      concurrency: "unbounded"
    })
    reports.push(...perAgent.flat())
  }
  return summarize(run.agents, reports, run.aborted)
})

const runCommand = Effect.fn("Operator.runCommand")(function* (
  ctx: OperatorContext,
  command: string,
  agents?: ReadonlyArray<string>
) {
  const index = ctx.sequence.next
  return yield* Effect.forEach(
    agents ?? [...ctx.dispatcher.registered],
    (agent) => runStep(ctx, { pipeline: "realtime", index, agent, command }),
    { concurrency: "unbounded" }
  )
})

/** Woken by each new registration, not polled. */
const registeredUntil = Effect.fn("Operator.registeredUntil")(function* (
  dispatcher: Dispatcher,
  condition: () => boolean
) {
  while (!condition()) yield* dispatcher.nextRegistration
})

const awaitRegistrations = Effect.fn("Operator.awaitRegistrations")(function* (ctx: OperatorContext) {
  const { dispatcher, options } = ctx
  const first = Duration.fromInputUnsafe(options.firstRegistrationTimeout ?? "5 minutes")
  const reached = () => options.expectAgents !== undefined && dispatcher.registered.size >= options.expectAgents
  const someone = yield* registeredUntil(dispatcher, () => dispatcher.registered.size > 0).pipe(
    Effect.timeoutOption(first)
  )
  if (Option.isNone(someone)) return yield* dispatcher.noAgents(first)
  yield* registeredUntil(dispatcher, reached).pipe(Effect.timeoutOption(options.registrationTimeout ?? "5 seconds"))
  return [...dispatcher.registered]
})

const realtime = <E>(ctx: OperatorContext, lines: Stream.Stream<string, E>) =>
  lines.pipe(
    Stream.map((line) => line.trim()),
    Stream.takeWhile((line) => line.toLowerCase() !== "exit"),
    Stream.filter((line) => line !== ""),
    Stream.mapEffect((line) => runCommand(ctx, line)),
    Stream.runCollect,
    Effect.map((all) => all.flat())
  )

/** A command from the loader topic runs as a step of its own, in the background; its report is kept. */
const forwardLoaderCommand = Effect.fn("Operator.forwardLoaderCommand")(function* (
  context: Deferred.Deferred<OperatorContext>,
  scope: Scope.Scope,
  step: Omit<StepInput, "pipeline" | "index">
) {
  const ctx = yield* Deferred.await(context)
  const report = runStep(ctx, { ...step, pipeline: "loader", index: ctx.sequence.next })
  yield* Effect.forkIn(
    Effect.flatMap(report, (done) => Ref.update(ctx.loaderReports, (all) => [...all, done])),
    scope
  )
})

/** Connects (waiting up to `connectTimeout` for the broker) and starts taking registrations at once. */
const connect = Effect.fn("Operator.connect")(function* (options: OperatorOptions) {
  const mqttClientId = `testbed-operator-${yield* Ids.token(6)}`
  const connection = yield* MqttConnection.make({ ...options.connection, clientId: mqttClientId })
  // Agents may wait for a broker that is not up yet; an operator logs every failed attempt (the first one at
  // once) and gives up after `connectTimeout`, or at once when the broker refuses its credentials.
  yield* connection.awaitConnected(options.connectTimeout ?? "30 seconds")
  return connection
})

export const start = Effect.fn("Operator.start")(function* (
  options: OperatorOptions
): Effect.fn.Return<Operator, MqttConnection.ConnectFailed, Scope.Scope | EventBus.EventBus | FileSystem.FileSystem> {
  const bus = yield* EventBus.EventBus
  if (options.signing._tag === "Compat") yield* Effect.logWarning(`operator: ${Security.compatWarning}`)
  const topics = options.topics ?? Protocol.defaultTopics
  const stepTimeout = Duration.fromInputUnsafe(options.stepTimeout ?? "10 minutes")
  const connection = yield* connect(options)
  const scope = yield* Effect.scope
  // Loader commands may arrive before the context below exists: they wait for it.
  const context = yield* Deferred.make<OperatorContext>()
  const dispatcher = yield* makeDispatcher({
    connection,
    topics,
    signing: options.signing,
    receiveCommands: options.receiveCommands ?? true,
    lostGrace: Duration.fromInputUnsafe(options.lostGrace ?? "10 seconds"),
    ...(options.feedbackFile !== undefined ? { feedbackFile: options.feedbackFile } : {}),
    ...(options.onResponse !== undefined ? { onResponse: options.onResponse } : {}),
    onLoaderCommand: (agent, command, commandId) => forwardLoaderCommand(context, scope, { agent, command, commandId })
  })
  const ctx: OperatorContext = {
    options,
    bus,
    connection,
    dispatcher,
    topics,
    mode: options.mode ?? "json",
    // Old agents listen on the shared topic only: compat mode keeps it whatever was asked.
    placement: options.signing._tag === "Signed" ? (options.commandTopics ?? "per-agent") : "shared",
    withEvents: options.events ?? true,
    stepTimeout,
    // The agent ends the command at the step timeout; its answer then needs a moment to arrive.
    deadlines: yield* DelayLine.make(Duration.sum(stepTimeout, Duration.seconds(5))),
    runTag: yield* Ids.token(6),
    sequence: { next: 0 },
    loaderReports: yield* Ref.make<ReadonlyArray<StepReport>>([])
  }
  yield* Deferred.succeed(context, ctx)
  return {
    mqttClientId: connection.clientId,
    agents: Effect.sync(() => [...dispatcher.registered]),
    awaitRegistrations: awaitRegistrations(ctx),
    runPipelines: (pipelines) => runPipelines(ctx, pipelines),
    runCommand: (command, agents) => runCommand(ctx, command, agents),
    realtime: (lines) => realtime(ctx, lines),
    loaderReports: Ref.get(ctx.loaderReports)
  }
})
