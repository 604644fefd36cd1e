/**
 * The whole operator session as the original runs it: the registration window, the pipelines, then live
 * commands from stdin until `exit`; with answers printed as they arrive and a summary at the end.
 */
import type { EventBus } from "@testbed/events"
import { type Duration, Effect, type FileSystem, type Scope, Stream } from "effect"
import type { Pipeline } from "./Config.ts"
import type * as MqttConnection from "./MqttConnection.ts"
import * as Operator from "./Operator.ts"
import type * as Protocol from "./Protocol.ts"
import { type RunSummary, summarize } from "./RunSummary.ts"
import type { Resolved } from "./Setup.ts"

export interface SessionOptions {
  readonly resolved: Resolved
  /** Replace the file's pipelines (each a `;`-separated string already split). */
  readonly pipelines?: ReadonlyArray<Pipeline>
  readonly expectAgents?: number
  readonly registrationTimeout?: Duration.Duration
  readonly stepTimeout?: Duration.Duration
  readonly onFailure?: "stop" | "continue"
  readonly abortAbovePercent?: number
  /** Replaces the file's `lost_grace`. */
  readonly lostGrace?: Duration.Duration
  /** `undefined` keeps the file's setting; `null` turns the feedback file off. */
  readonly feedbackFile?: string | null
  readonly realtime: boolean
  readonly lines: Stream.Stream<string, unknown>
  readonly print: (line: string) => Effect.Effect<void>
}

/** One line per answer: who, what, how it ended, then its output indented. */
export const describeResponse = (r: Protocol.ResponseMessage): string => {
  const status = r.status ?? (r.error.startsWith("Failed to execute") ? "error" : "answered")
  const detail = r.exit_code !== undefined ? `exit ${r.exit_code ?? "none"}` : "exit code not reported"
  const duration = r.duration !== undefined ? `, ${r.duration.toFixed(3)} s` : ""
  const body = [r.output ?? "", r.error === "None" ? "" : r.error]
    .filter((s) => s.trim() !== "")
    .map((s) =>
      s
        .replace(/\n$/, "")
        .split("\n")
        .map((l) => `    ${l}`)
        .join("\n")
    )
  return [`${r.client_id}: ${r.command} -> ${status} (${detail}${duration})`, ...body].join("\n")
}

export const run = Effect.fn("Session.run")(function* (
  options: SessionOptions
): Effect.fn.Return<
  RunSummary,
  MqttConnection.ConnectFailed | Operator.NoAgentsRegistered,
  Scope.Scope | EventBus.EventBus | FileSystem.FileSystem
> {
  const { config, connection, signing } = options.resolved
  const op = config.operator
  const feedbackFile =
    options.feedbackFile === null
      ? undefined
      : (options.feedbackFile ?? (op.saveFeedback ? op.feedbackFile : undefined))
  const expectAgents = options.expectAgents ?? op.expectAgents
  const abortAbovePercent = options.abortAbovePercent ?? op.abortAbovePercent
  const operators = yield* Operator.Operators
  const operator = yield* operators.start({
    connection,
    topics: config.topics,
    mode: op.jsonify ? "json" : "plain",
    signing,
    registrationTimeout: options.registrationTimeout ?? op.registrationTimeout,
    ...(expectAgents !== undefined ? { expectAgents } : {}),
    stepTimeout: options.stepTimeout ?? op.stepTimeout,
    onFailure: options.onFailure ?? op.onFailure,
    ...(abortAbovePercent !== undefined ? { abortAbovePercent } : {}),
    ...(feedbackFile !== undefined ? { feedbackFile } : {}),
    receiveCommands: op.receiveCommands,
    lostGrace: options.lostGrace ?? op.lostGrace,
    onResponse: (response) => options.print(describeResponse(response))
  })
  yield* options.print(`operator: waiting for agents on ${connection.url}`)
  const agents = yield* operator.awaitRegistrations
  yield* options.print(`operator: registered agents: ${agents.join(", ")}`)
  const pipelines = options.pipelines ?? op.pipelines
  const piped = op.pipelineMode && pipelines.length > 0 ? yield* operator.runPipelines(pipelines) : undefined
  if (piped?.aborted) return piped
  const live = options.realtime
    ? yield* Effect.andThen(
        options.print("operator: real-time mode: each line goes to every agent; `exit` ends"),
        operator.realtime(options.lines.pipe(Stream.catch(() => Stream.empty)))
      )
    : []
  const loader = yield* operator.loaderReports
  return summarize(agents, [...(piped?.steps ?? []), ...live, ...loader], false)
})
