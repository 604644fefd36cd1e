/**
 * What an operator run did: one report per agent and step, counts per final state, and whether all
 * succeeded (the CLI's exit code).
 */
import * as Protocol from "./Protocol.ts"
import type { StepOutcome } from "./StepMachine.ts"

export interface StepReport {
  /** Pipeline name, or `realtime` / `loader` for live commands. */
  readonly pipeline: string
  readonly agent: string
  readonly index: number
  readonly command: string
  readonly commandId: string
  readonly state: StepOutcome
  readonly exitCode: number | null
  /** From sending the command to its final state, measured by the operator. */
  readonly roundTripMs: number
  readonly response: Protocol.ResponseMessage | undefined
}

export interface RunSummary {
  readonly agents: ReadonlyArray<string>
  readonly steps: ReadonlyArray<StepReport>
  readonly counts: Readonly<Record<StepOutcome, number>>
  /** True when the failure percentage passed the abort threshold. */
  readonly aborted: boolean
  readonly succeeded: boolean
}

const outcomes: ReadonlyArray<StepOutcome> = ["succeeded", "failed", "refused", "timed_out", "agent_lost", "skipped"]

export const summarize = (
  agents: ReadonlyArray<string>,
  steps: ReadonlyArray<StepReport>,
  aborted: boolean
): RunSummary => {
  const counts = Object.fromEntries(outcomes.map((o) => [o, 0])) as Record<StepOutcome, number>
  for (const step of steps) counts[step.state]++
  return {
    agents,
    steps,
    counts,
    aborted,
    succeeded: !aborted && agents.length > 0 && steps.every((s) => s.state === "succeeded")
  }
}

/** A short human summary: one line per agent and pipeline, then the totals. */
export const format = (summary: RunSummary): string => {
  const lines: Array<string> = []
  const groups = new Map<string, Array<StepReport>>()
  for (const step of summary.steps) {
    const key = `${step.pipeline} ${step.agent}`
    groups.set(key, [...(groups.get(key) ?? []), step])
  }
  for (const [key, steps] of groups) {
    const marks = steps.map((s) => (s.state === "succeeded" ? "ok" : s.state)).join(", ")
    lines.push(`${key}: ${marks}`)
  }
  const totals = outcomes
    .filter((o) => summary.counts[o] > 0)
    .map((o) => `${summary.counts[o]} ${o}`)
    .join(", ")
  lines.push(
    `${summary.agents.length} agents, ${summary.steps.length} steps: ${totals || "none"}${summary.aborted ? " (aborted)" : ""}`
  )
  lines.push(summary.succeeded ? "all steps succeeded" : "NOT all steps succeeded")
  return lines.join("\n")
}

/**
 * The summary as one JSON document (`testbed fleet operator --json`): whether it succeeded, the counts per final
 * state, and every step with its answer (signatures left out). `response` is `null` for a step without an answer
 * (skipped, timed out, agent lost).
 */
export const toJson = (summary: RunSummary) => ({
  succeeded: summary.succeeded,
  aborted: summary.aborted,
  agents: summary.agents,
  counts: summary.counts,
  steps: summary.steps.map((step) => ({
    pipeline: step.pipeline,
    agent: step.agent,
    index: step.index,
    command: step.command,
    commandId: step.commandId,
    state: step.state,
    exitCode: step.exitCode,
    roundTripMs: step.roundTripMs,
    response: step.response === undefined ? null : Protocol.withoutSignature(step.response)
  }))
})
