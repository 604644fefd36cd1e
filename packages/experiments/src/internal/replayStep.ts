// The `replay` step: serve a recorded script's server side in-process (@testbed/replay's ReplayServer) and run a
// client command against it, or wait for a `replay` service to finish and read its verdict. Either way the
// outcome is kept for `replay_passed`, and a divergence fails the step with the replay's own message (offset,
// expected and received bytes). The server is the context's ReplayServer when it has one (a unit test's
// `ReplayServer.layerTest`), else the real one. This module is loaded when a replay step runs (steps.ts).
import { ServiceCommand } from "@testbed/plugins"
import { ReplayServer, TestLauncher, Verdict } from "@testbed/replay"
import type { WriteFailed } from "@testbed/events"
import { Deferred, Duration, Effect, type FileSystem, Option, Path } from "effect"
import type { ReplayStep } from "../ExperimentConfig.ts"
import * as Replay from "../Replay.ts"
import * as Render from "./render.ts"
import { type Attempt, describeExit, recordReplay, recordStep } from "./attempt.ts"
import { stepLog } from "./stepLog.ts"

const defaultTimeout = Duration.minutes(1)

type Outcome = { readonly status: "passed" | "failed" | "timeout"; readonly message: string | undefined }
const failed = (message: string): Outcome => ({ status: "failed", message })
const passed: Outcome = { status: "passed", message: undefined }

const verdict = (name: string, outcome: Replay.Outcome | string): Outcome =>
  typeof outcome === "string"
    ? { status: "failed", message: `step ${name}: ${outcome}` }
    : outcome.passed
      ? { status: "passed", message: undefined }
      : { status: "failed", message: `step ${name}: ${Replay.describe(outcome)}` }

/** Waits for a replay service to end and reads the outcome it wrote. */
const checkService = Effect.fnUntraced(function* (
  attempt: Attempt,
  name: string,
  step: ReplayStep
): Effect.fn.Return<Outcome, never, FileSystem.FileSystem | Path.Path> {
  const path = yield* Path.Path
  const runtime = attempt.services.get(step.service!)!
  const timeout = step.timeout ?? defaultTimeout
  const ended = yield* Effect.timeoutOption(Deferred.await(runtime.done), timeout)
  if (Option.isNone(ended)) {
    const reason = `${step.service} still replaying after ${Duration.format(timeout)}`
    recordReplay(attempt, name, reason)
    return { status: "timeout", message: `step ${name}: ${reason}` } satisfies Outcome
  }
  const outcome = yield* Replay.readOutcome(path.join(runtime.dir, Replay.outcomeFile))
  recordReplay(attempt, name, outcome)
  return verdict(name, outcome)
})

/** The context's ReplayServer (a unit test's `ReplayServer.layerTest`), else the real one. */
const replayServer = Effect.map(Effect.serviceOption(ReplayServer.ReplayServer), (given) =>
  Option.isSome(given) ? given.value.serve : ReplayServer.serve
)

/** Serves the script, runs the client against it, then ends the replay and judges both. */
const replayForClient = Effect.fnUntraced(function* (
  attempt: Attempt,
  index: number,
  name: string,
  step: ReplayStep
): Effect.fn.Return<Outcome, WriteFailed.WriteFailed, FileSystem.FileSystem | Path.Path> {
  const path = yield* Path.Path
  const scriptText = yield* Render.orFailed(ServiceCommand.renderText(step.script!, attempt.variables))
  if (scriptText instanceof ServiceCommand.TemplateFailed) return failed(`step ${name}: ${scriptText.reason}`)
  const experimentDir = String(attempt.variables.experiment_dir ?? ".")
  const script = path.resolve(experimentDir, scriptText)
  const loaded = yield* Effect.result(Replay.loadScript(script, step.entry))
  if (loaded._tag === "Failure") {
    recordReplay(attempt, name, loaded.failure.message)
    return failed(`step ${name}: cannot load ${script}: ${loaded.failure.message}`)
  }
  const logs = yield* Effect.result(
    Effect.all([stepLog(attempt, name, ".stdout.log"), stepLog(attempt, name, ".stderr.log")])
  )
  if (logs._tag === "Failure") {
    if (logs.failure._tag === "PathOutsideRun") return failed(`step ${name}: ${logs.failure.message}`)
    return yield* Effect.fail(logs.failure)
  }
  const [stdoutPath, stderrPath] = logs.success
  const timeout = step.timeout ?? defaultTimeout
  const stepTimeout = step.step_timeout
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const server = yield* (yield* replayServer)(loaded.success.plan, {
        host: "127.0.0.1",
        port: 0,
        connections: step.connections ?? 1,
        announce: false,
        ...(stepTimeout === undefined ? {} : { stepTimeout })
      })
      const variables = { ...attempt.variables, replay_host: server.host, replay_port: server.port }
      const rendered = yield* Render.orFailed(
        ServiceCommand.renderCommand(
          {
            program: step.command![0]!,
            args: step.command!.slice(1),
            env: { ...TestLauncher.clientEnv(server.host, server.port), ...step.env }
          },
          variables,
          { id: `${attempt.test.name}/step/${index}`, cwd: attempt.dir }
        )
      )
      if (rendered instanceof ServiceCommand.TemplateFailed) return failed(`step ${name}: ${rendered.reason}`)
      const client = yield* attempt.environment.launch({
        id: `${attempt.test.name}/${name}`,
        command: rendered,
        stdoutPath,
        stderrPath
      })
      if (client.outputFailed !== undefined)
        yield* Effect.forkScoped(Effect.flatMap(client.outputFailed, (error) => Deferred.succeed(attempt.fatal, error)))
      const exit = yield* Effect.timeoutOption(client.exited, timeout)
      const ended = Option.isSome(exit) ? exit.value : yield* client.stop("2 seconds")
      recordStep(attempt, { name, exitCode: ended.exitCode, signal: ended.signal, stdoutPath, stderrPath })
      // The client has ended: its connection closes at once, so a short grace is enough.
      const outcome = Verdict.fromOutcome(yield* server.finish(Duration.seconds(2)))
      recordReplay(attempt, name, outcome)
      if (Option.isNone(exit))
        return {
          status: "timeout",
          message: `step ${name}: client still running after ${Duration.format(timeout)}`
        } as Outcome
      if (!outcome.passed) return verdict(name, outcome)
      const expected = step.expect_exit ?? 0
      if (expected !== "any" && (ended.signal !== null || ended.exitCode !== expected))
        return failed(`step ${name}: client ${describeExit(ended)} (expected ${expected})`)
      return passed
    })
  ).pipe(
    Effect.catchTags({
      ListenFailed: (error) => Effect.succeed(failed(`step ${name}: ${error.message}`)),
      ServiceLaunchFailed: (error) => Effect.succeed(failed(`step ${name}: ${error.message}`))
    })
  )
})

export const runReplay = (
  attempt: Attempt,
  index: number,
  step: ReplayStep
): Effect.Effect<Outcome, WriteFailed.WriteFailed, FileSystem.FileSystem | Path.Path> => {
  const name = step.name ?? `step${index}`
  return step.service !== undefined ? checkService(attempt, name, step) : replayForClient(attempt, index, name, step)
}
