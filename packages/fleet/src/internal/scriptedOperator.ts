// The operator of `Operators.layerTest`: no broker, no agents; every step's answer comes from the script, at once.
// For unit tests of what drives an operator (the CLI's session, a harness), not of the operator itself.
import { Effect, Stream } from "effect"
import type { Operator, OperatorOptions } from "../Operator.ts"
import { type StepReport, summarize } from "../RunSummary.ts"
import { NoAgentsRegistered } from "./dispatcher.ts"

export interface Script {
  /** The agents that register (none: `awaitRegistrations` fails with `NoAgentsRegistered`). */
  readonly agents: ReadonlyArray<string>
  /** How `agent` answers `command`: its exit code (0 succeeded, else failed). */
  readonly answer: (agent: string, command: string) => { readonly exitCode: number }
}

interface Lane {
  readonly pipeline: string
  readonly agent: string
  readonly commands: ReadonlyArray<string>
}

/** One agent's steps in order; with `stop`, the steps after a failed one are skipped (as the live operator does). */
const runLane = (script: Script, lane: Lane, stopOnFailure: boolean, ids: { next: number }): Array<StepReport> => {
  const reports: Array<StepReport> = []
  let failed = false
  lane.commands.forEach((command, index) => {
    const base = { pipeline: lane.pipeline, agent: lane.agent, index, command, commandId: `scripted-${ids.next++}` }
    if (failed && stopOnFailure) {
      reports.push({ ...base, state: "skipped", exitCode: null, roundTripMs: 0, response: undefined })
      return
    }
    const { exitCode } = script.answer(lane.agent, command)
    failed = failed || exitCode !== 0
    reports.push({
      ...base,
      state: exitCode === 0 ? "succeeded" : "failed",
      exitCode,
      roundTripMs: 0,
      response: undefined
    })
  })
  return reports
}

export const make = (script: Script, options: OperatorOptions): Operator => {
  const ids = { next: 0 }
  const stop = (options.onFailure ?? "stop") === "stop"
  const runCommand = (command: string, agents: ReadonlyArray<string> = script.agents) =>
    Effect.sync(() =>
      agents.flatMap((agent) => runLane(script, { pipeline: "realtime", agent, commands: [command] }, false, ids))
    )
  return {
    mqttClientId: "scripted-operator",
    agents: Effect.succeed(script.agents),
    awaitRegistrations:
      script.agents.length === 0 ? Effect.fail(new NoAgentsRegistered({ waitedMs: 0 })) : Effect.succeed(script.agents),
    runPipelines: (pipelines) =>
      Effect.sync(() =>
        summarize(
          script.agents,
          pipelines.flatMap((p) =>
            script.agents.flatMap((agent) => runLane(script, { pipeline: p.name, agent, commands: p.steps }, stop, ids))
          ),
          false
        )
      ),
    runCommand,
    realtime: (lines) =>
      lines.pipe(
        Stream.map((line) => line.trim()),
        Stream.filter((line) => line !== ""),
        Stream.takeWhile((line) => line !== "exit"),
        Stream.mapEffect((line) => runCommand(line)),
        Stream.runCollect,
        Effect.map((batches) => [...batches].flat())
      ),
    loaderReports: Effect.succeed([])
  }
}
