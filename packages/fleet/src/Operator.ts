/**
 * The operator (the original's `operator.py`): a registration window, pipelines run on all agents in
 * parallel where each step waits for its answer (never a fixed sleep), a state machine per agent and step,
 * a failure policy, live commands (stdin and the command loader topic), and the feedback file.
 */
import { EventBus, Ids } from "@testbed/events"
import { Context, Deferred, Duration, Effect, type FileSystem, Layer, Option, Ref, type Scope, Stream } from "effect"
import type { FailurePolicy, Pipeline } from "./Config.ts"
import * as DelayLine from "./internal/delayLine.ts"
import { type Dispatcher, makeDispatcher, type NoAgentsRegistered } from "./internal/dispatcher.ts"
import * as ScriptedOperator from "./internal/scriptedOperator.ts"
import * as StepRun from "./internal/stepRun.ts"
import * as MqttConnection from "./MqttConnection.ts"
import * as Protocol from "./Protocol.ts"
import { type RunSummary, type StepReport, summarize } from "./RunSummary.ts"
import * as Security from "./Security.ts"

export { NoAgentsRegistered } from "./internal/dispatcher.ts"
export type { Script } from "./internal/scriptedOperator.ts"

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

/** What every step of one operator reads: its options resolved, its connection, and its few counters. */
interface OperatorContext extends StepRun.StepContext {
  readonly options: OperatorOptions
  readonly loaderReports: Ref.Ref<ReadonlyArray<StepReport>>
}

/** Each pipeline runs on every registered agent at once (each agent at its own pace), one pipeline after the other. */
const runPipelines = Effect.fn("Operator.runPipelines")(function* (
  ctx: OperatorContext,
  pipelines: ReadonlyArray<Pipeline>
) {
  const agents = [...ctx.dispatcher.registered]
  const policy: StepRun.Policy = {
    onFailure: ctx.options.onFailure ?? "stop",
    abortAbovePercent: ctx.options.abortAbovePercent,
    agents: agents.length,
    failed: new Set(),
    aborted: false
  }
  const reports: Array<StepReport> = []
  for (const pipeline of pipelines) {
    const lanes = agents.map((agent) => ({ pipeline: pipeline.name, agent, commands: pipeline.steps, firstIndex: 0 }))
    reports.push(...(yield* StepRun.runLanes(ctx, lanes, policy)))
  }
  return summarize(agents, reports, policy.aborted)
})

const runCommand = Effect.fn("Operator.runCommand")(function* (
  ctx: OperatorContext,
  command: string,
  agents?: ReadonlyArray<string>
) {
  const firstIndex = ctx.sequence.next
  const lanes = (agents ?? [...ctx.dispatcher.registered]).map((agent) => ({
    pipeline: "realtime",
    agent,
    commands: [command],
    firstIndex
  }))
  return yield* StepRun.runLanes(ctx, lanes)
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
  step: { readonly agent: string; readonly command: string; readonly commandId: string }
) {
  const ctx = yield* Deferred.await(context)
  const lane = { pipeline: "loader", agent: step.agent, commands: [step.command], firstIndex: ctx.sequence.next }
  const run = StepRun.runLanes(ctx, [{ ...lane, commandId: step.commandId }])
  yield* Effect.forkIn(
    Effect.flatMap(run, (done) => Ref.update(ctx.loaderReports, (all) => [...all, ...done])),
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
    signing: options.signing,
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

/**
 * Where callers (the CLI's session, a harness) get their operator from: the live `start` by default, so nothing
 * needs providing; `layerTest` swaps in a scripted one for their unit tests.
 */
export const Operators = Context.Reference<{
  readonly start: (
    options: OperatorOptions
  ) => Effect.Effect<Operator, MqttConnection.ConnectFailed, Scope.Scope | EventBus.EventBus | FileSystem.FileSystem>
}>("@testbed/fleet/Operator/Operators", { defaultValue: () => ({ start }) })

/** The live operator (`start`: a broker connection, real agents). */
export const layer = Layer.succeed(Operators, { start })

/**
 * An operator with no broker and no agents: the script's agents register at once and answer each command with the
 * script's exit code (a failed step skips the rest of that agent's pipeline unless `onFailure: "continue"`).
 */
export const layerTest = (script: ScriptedOperator.Script) =>
  Layer.succeed(Operators, {
    start: (options: OperatorOptions) => Effect.succeed(ScriptedOperator.make(script, options))
  })
