// The operator's step model, batched: one run drives every agent's lane of steps from one fiber and callbacks. A
// step is a plain record (no fiber, no Deferred, no Ref-backed state machine of its own); its answer, its running
// notice, a lost agent or its deadline settle it from whichever fiber sees that happen (the dispatcher's, the
// delay line's), and settling a step starts that agent's next one at once — so agents still move through a
// pipeline independently, as they did with a fiber each, and the run waits on one Deferred for them all.
// The events stay what the reports and the event log have always read: `step.started`, `step.state_changed` for
// each move of the `fleet-step` table, `step.finished`.
import { type EventBus, StateMachine } from "@testbed/events"
import { Clock, Deferred, Duration, Effect } from "effect"
import type { FailurePolicy } from "../Config.ts"
import * as Protocol from "../Protocol.ts"
import type { StepReport } from "../RunSummary.ts"
import * as Security from "../Security.ts"
import { FleetStep, type StepOutcome, type StepState } from "../StepMachine.ts"
import type * as MqttConnection from "../MqttConnection.ts"
import * as DelayLine from "./delayLine.ts"
import type { Dispatcher, Reply } from "./dispatcher.ts"

/** What every step of one operator reads. */
export interface StepContext {
  readonly bus: EventBus.EventBus["Service"]
  readonly connection: MqttConnection.MqttConnection
  readonly dispatcher: Dispatcher
  readonly topics: Protocol.Topics
  readonly mode: Protocol.Mode
  readonly placement: Protocol.CommandTopics
  readonly signing: Security.Signing
  readonly withEvents: boolean
  readonly stepTimeout: Duration.Duration
  /** Every step's answer deadline (`stepTimeout` + 5 s), on one fiber. */
  readonly deadlines: DelayLine.DelayLine
  /** Agents remember command ids across operator runs: a new run must never reuse one. */
  readonly runTag: string
  /** Numbers the steps of this operator (command ids, live commands' index). */
  readonly sequence: { next: number }
}

/** One agent's steps in one run. */
export interface Lane {
  readonly pipeline: string
  readonly agent: string
  readonly commands: ReadonlyArray<string>
  /** The index of the first command (live commands are numbered by the operator's sequence). */
  readonly firstIndex: number
  /** Given for loader commands (the commander's id); otherwise made from the run tag and sequence. */
  readonly commandId?: string
}

/**
 * The failure policy of a run of pipelines, and what it has seen so far (shared by the pipelines of one run: an
 * abort in one skips the next). Live commands have none (each is a step of its own).
 */
export interface Policy {
  readonly onFailure: FailurePolicy
  readonly abortAbovePercent: number | undefined
  /** How many agents the run has (the threshold's denominator). */
  readonly agents: number
  readonly failed: Set<string>
  aborted: boolean
}

interface LaneState {
  readonly lane: Lane
  next: number
  stopped: boolean
  readonly reports: Array<StepReport>
}

interface Run {
  readonly ctx: StepContext
  readonly policy: Policy | undefined
  readonly lanes: ReadonlyArray<LaneState>
  /** The caller went away: nothing more is started. */
  cancelled: boolean
  remaining: number
  readonly inFlight: Set<Flight>
  readonly done: Deferred.Deferred<void>
}

interface Flight {
  readonly lane: LaneState
  readonly index: number
  readonly command: string
  readonly id: string
  readonly sentAt: number
  state: StepState
  settled: boolean
  deadline: DelayLine.Pending
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

const stepTest = (lane: Lane) => `fleet:${lane.pipeline}:${lane.agent}`
const stepEntity = (lane: Lane, index: number) => `${stepTest(lane)}/step/${index}`

/** The `fleet-step` table's move, published as the per-step machine did; a move the table forbids is not made. */
const move = (
  ctx: StepContext,
  lane: Lane,
  index: number,
  flight: { state: StepState },
  to: StepState,
  trigger: string
) => {
  const from = flight.state
  if (!StateMachine.allows(FleetStep, from, to)) return Effect.void
  flight.state = to
  if (!ctx.withEvents) return Effect.void
  return Effect.asVoid(
    ctx.bus.emit({
      type: "step.state_changed",
      entityId: `${lane.pipeline}/${lane.agent}/${index}`,
      data: { machine: FleetStep.name, from, to, trigger, metadata: {} }
    })
  )
}

const report = (flight: Flight, state: StepOutcome, end: number, reply: Reply): StepReport => {
  const response = reply._tag === "Response" ? reply.response : undefined
  const { lane } = flight.lane
  return {
    pipeline: lane.pipeline,
    index: flight.index,
    agent: lane.agent,
    command: flight.command,
    commandId: flight.id,
    state,
    exitCode: response?.exit_code ?? null,
    roundTripMs: end - flight.sentAt,
    response
  }
}

/** The failure policy after a step that did not succeed: stop this agent, and abort everyone past the threshold. */
const applyPolicy = (policy: Policy | undefined, lane: LaneState, state: StepOutcome) => {
  if (policy === undefined || state === "succeeded") return
  policy.failed.add(lane.lane.agent)
  if (policy.onFailure === "stop" || state === "agent_lost") lane.stopped = true
  const limit = policy.abortAbovePercent
  if (limit !== undefined && (policy.failed.size / policy.agents) * 100 > limit) policy.aborted = true
}

/**
 * A settle runs on the dispatcher's or the delay line's fiber: a defect there (a bug) must neither stop that fiber
 * nor leave the run waiting forever, so it ends the run with the defect instead.
 */
const guarded = (run: Run, effect: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.catchDefect(effect, (defect) => Effect.asVoid(Deferred.die(run.done, defect)))

/** Settles a step once (an answer and its deadline may both come): its final state, report, and the lane's next. */
const settle = Effect.fnUntraced(function* (run: Run, flight: Flight, reply: Reply) {
  if (flight.settled) return
  flight.settled = true
  run.inFlight.delete(flight)
  DelayLine.cancel(flight.deadline)
  const { ctx } = run
  ctx.dispatcher.untrack(flight.id)
  const end = yield* Clock.currentTimeMillis
  const { state, trigger } = outcomeOf(reply)
  const { lane } = flight.lane
  yield* move(ctx, lane, flight.index, flight, state, trigger)
  if (ctx.withEvents) {
    yield* ctx.bus.emit({
      type: "step.finished",
      entityId: stepEntity(lane, flight.index),
      data: {
        test: stepTest(lane),
        index: flight.index,
        kind: "fleet",
        status: stepStatus(state),
        durationMs: end - flight.sentAt,
        message: trigger
      }
    })
  }
  flight.lane.reports.push(report(flight, state, end, reply))
  applyPolicy(run.policy, flight.lane, state)
  flight.lane.next++
  yield* advance(run, flight.lane)
})

/** Sends one step's command; its answer (or a lost agent, or the deadline) settles it later. */
const send = Effect.fnUntraced(function* (run: Run, laneState: LaneState) {
  const { ctx } = run
  const { lane } = laneState
  const index = lane.firstIndex + laneState.next
  const command = lane.commands[laneState.next]!
  const id = lane.commandId ?? `${ctx.runTag}-${(ctx.sequence.next++).toString(36)}`
  const sentAt = yield* Clock.currentTimeMillis
  const flight: Flight = {
    lane: laneState,
    index,
    command,
    id,
    sentAt,
    state: "pending",
    settled: false,
    deadline: DelayLine.done
  }
  const base = { client_id: lane.agent, command, timeout: Duration.toSeconds(ctx.stepTimeout) }
  const topic = Protocol.commandTopicFor(ctx.topics, ctx.placement, lane.agent)
  // Not waiting for the broker's acknowledgement: the answer is what the step waits for, and every waiting
  // command is resent after a reconnect or a re-registration.
  const publish = (at: number) =>
    ctx.connection.send(topic, Protocol.encodeCommand(ctx.mode, Security.sign(ctx.signing, base, id, at)), 1)
  if (ctx.withEvents) {
    yield* ctx.bus.emit({
      type: "step.started",
      entityId: stepEntity(lane, index),
      data: { test: stepTest(lane), index, kind: "fleet", description: command }
    })
  }
  run.inFlight.add(flight)
  const tracked = ctx.dispatcher.track(id, {
    agent: lane.agent,
    command,
    // A resend is signed afresh (same id), or an agent would refuse it as stale after a long outage.
    resend: Effect.flatMap(Clock.currentTimeMillis, publish),
    settle: (reply) => guarded(run, settle(run, flight, reply)),
    // Suspended: the move reads the step's state when the notice comes, not now.
    onRunning: Effect.suspend(() => move(ctx, lane, index, flight, "running", "agent started it"))
  })
  // The agent is gone already: answered at once rather than after the timeout.
  if (!tracked) return yield* settle(run, flight, { _tag: "Lost" })
  yield* move(ctx, lane, index, flight, "sent", "published")
  yield* publish(sentAt)
  // The deadline sits on the shared delay line (one fiber for every step), not on a timer of its own.
  if (!flight.settled)
    flight.deadline = yield* ctx.deadlines.add(guarded(run, settle(run, flight, { _tag: "NoAnswer" })))
})

/** A step not run (an earlier failure, an abort, a lost agent): recorded, its machine moved to `skipped`. */
const skip = Effect.fnUntraced(function* (run: Run, laneState: LaneState) {
  const { lane } = laneState
  const index = lane.firstIndex + laneState.next
  const command = lane.commands[laneState.next]!
  yield* move(run.ctx, lane, index, { state: "pending" }, "skipped", "earlier failure or abort")
  laneState.reports.push({
    pipeline: lane.pipeline,
    index,
    agent: lane.agent,
    command,
    commandId: "",
    state: "skipped",
    exitCode: null,
    roundTripMs: 0,
    response: undefined
  })
})

/** Starts the lane's next step, skipping what the policy rules out; the last lane to end completes the run. */
const advance = Effect.fnUntraced(function* (run: Run, laneState: LaneState): Effect.fn.Return<void> {
  if (run.cancelled) return
  const { lane } = laneState
  while (laneState.next < lane.commands.length) {
    const { policy } = run
    const ruledOut =
      policy !== undefined && (policy.aborted || laneState.stopped || run.ctx.dispatcher.lost.has(lane.agent))
    if (!ruledOut) return yield* send(run, laneState)
    yield* skip(run, laneState)
    laneState.next++
  }
  if (--run.remaining === 0) yield* Deferred.succeed(run.done, undefined)
})

/** The caller went away: nothing more starts, and the steps in flight are forgotten by the dispatcher. */
const cancel = (run: Run) =>
  Effect.sync(() => {
    run.cancelled = true
    for (const flight of run.inFlight) {
      flight.settled = true
      DelayLine.cancel(flight.deadline)
      run.ctx.dispatcher.untrack(flight.id)
    }
    run.inFlight.clear()
  })

/**
 * Runs every lane's steps, each agent's in order and independently of the others, and waits for all of them:
 * one fiber for the whole run, however many agents. The reports come lane by lane in the order given, each in
 * step order.
 */
export const runLanes = Effect.fn("Operator.runSteps")(function* (
  ctx: StepContext,
  lanes: ReadonlyArray<Lane>,
  policy?: Policy
) {
  const run: Run = {
    ctx,
    policy,
    lanes: lanes.map((lane) => ({ lane, next: 0, stopped: false, reports: [] })),
    cancelled: false,
    remaining: lanes.length,
    inFlight: new Set(),
    done: yield* Deferred.make<void>()
  }
  if (run.remaining === 0) return []
  yield* Effect.forEach(run.lanes, (lane) => advance(run, lane), { discard: true }).pipe(
    Effect.andThen(Deferred.await(run.done)),
    Effect.onInterrupt(() => cancel(run))
  )
  return run.lanes.flatMap((lane): ReadonlyArray<StepReport> => lane.reports)
})
