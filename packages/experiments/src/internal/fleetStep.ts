// The `fleet` step: push a pipeline of shell commands to a fleet of agents over MQTT with @testbed/fleet's
// Operator, on an embedded broker of the step's own (default) or a given one. Agents are either started here,
// in-process through LocalRunner with a secret made for the step, or external ones the step waits for. The
// Operator already publishes `step.*` events for every agent and command (test `fleet:<test>/<step>:<agent>`,
// which the reports keep apart from the test's own steps), so this step emits nothing of its own.
import { randomBytes } from "node:crypto"
import { LocalRunner } from "@testbed/commands"
import type { EventBus, WriteFailed } from "@testbed/events"
import { Agent, Broker, Operator, RunSummary, Security } from "@testbed/fleet"
import { Duration, Effect, FileSystem, Path, Redacted } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import type { FleetStep } from "../ExperimentConfig.ts"
import { type Attempt, writeFailed } from "./attempt.ts"
import { stepLog } from "./stepLog.ts"

const defaultStepTimeout = Duration.minutes(1)
const defaultRegistrationTimeout = Duration.seconds(30)

type Outcome = { readonly status: "passed" | "failed" | "timeout"; readonly message: string | undefined }

const describe = (report: RunSummary.StepReport): string => {
  const why =
    report.state === "failed" ? `exit code ${report.exitCode ?? "unknown"}` : report.state.replaceAll("_", " ")
  return `agent ${report.agent} step ${report.index} (${report.command}): ${why}`
}

const secretOf = Effect.fn("FleetStep.secretOf")(function* (attempt: Attempt, step: FleetStep) {
  if (step.secret_file === undefined) return Redacted.make(randomBytes(32).toString("hex"))
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const file = path.resolve(String(attempt.variables.experiment_dir ?? "."), step.secret_file)
  const text = yield* fs
    .readFileString(file)
    .pipe(Effect.mapError((error) => `cannot read the secret file ${file}: ${error.message}`))
  return Redacted.make(text.trim())
})

const run = Effect.fnUntraced(function* (attempt: Attempt, name: string, step: FleetStep) {
  const fs = yield* FileSystem.FileSystem
  const stepTimeout = step.step_timeout ?? defaultStepTimeout
  const registrationTimeout = step.registration_timeout ?? defaultRegistrationTimeout
  const wanted = step.agents ?? step.expect ?? 1
  const signing = Security.signed(yield* secretOf(attempt, step))
  const url = step.broker ?? (yield* Broker.embedded({ host: "127.0.0.1", port: 0 })).url
  const connection = { url }
  const operator = yield* Operator.start({
    connection,
    signing,
    expectAgents: wanted,
    firstRegistrationTimeout: registrationTimeout,
    registrationTimeout,
    stepTimeout,
    receiveCommands: false
  })
  // Started after the operator has subscribed, so their first registration is heard (no 5 s resend wait).
  if (step.agents !== undefined) {
    // On a shared broker, ids of the step's own would otherwise meet another run's agents.
    const prefix = step.broker === undefined ? "" : `${randomBytes(3).toString("hex")}-`
    const ids = Array.from({ length: step.agents }, (_, i) => `${prefix}agent-${i + 1}`)
    // From `Agent.Agents`: live agents on LocalRunner here, scripted ones in unit tests (`Agent.layerTest`).
    const agents = yield* Agent.Agents
    yield* Effect.forEach(ids, (id) => agents.start({ ids: [id], connection, signing }), { discard: true })
  }
  const registered = yield* operator.awaitRegistrations
  if (registered.length < wanted)
    return yield* Effect.fail(
      `${registered.length} of ${wanted} agent(s) registered within ${Duration.format(registrationTimeout)}`
    )
  const summary = yield* operator.runPipelines([{ name: `${attempt.test.name}/${name}`, steps: step.pipeline }])
  const log = yield* stepLog(attempt, name, ".fleet.log")
  yield* fs.writeFileString(log, `${RunSummary.format(summary)}\n`).pipe(Effect.mapError(writeFailed(log)))
  if (summary.succeeded) return { status: "passed", message: undefined } satisfies Outcome
  const bad = summary.steps.filter((report) => report.state !== "succeeded" && report.state !== "skipped")
  return {
    status: "failed",
    message: `step ${name}: ${bad.length > 0 ? bad.map(describe).join("; ") : "not every step succeeded"}`
  } satisfies Outcome
})

export const runFleet = (
  attempt: Attempt,
  index: number,
  step: FleetStep
): Effect.Effect<
  Outcome,
  WriteFailed.WriteFailed,
  FileSystem.FileSystem | Path.Path | EventBus.EventBus | ChildProcessSpawner.ChildProcessSpawner
> => {
  const name = step.name ?? `step${index}`
  return Effect.scoped(run(attempt, name, step)).pipe(
    Effect.catch((error) =>
      typeof error !== "string" && error._tag === "WriteFailed"
        ? Effect.fail(error)
        : Effect.succeed<Outcome>({
            status: "failed",
            message: `step ${name}: ${typeof error === "string" ? error : error.message}`
          })
    ),
    Effect.provide(LocalRunner.layer)
  )
}
