// Readiness: when a started service can be talked to — its port accepts connections, a line appeared in its
// output, or a probe command succeeded — bounded by a timeout, and cut short if the process ends first.
import { ServiceCommand } from "@testbed/plugins"
import { Duration, Effect, FileSystem, Option } from "effect"
import * as Render from "./render.ts"
import { Abort, type Attempt, describeExit, hostOf, type ServiceRuntime } from "./attempt.ts"
import { pollUntil, tcpOpen } from "./probe.ts"

const defaultReadinessTimeout = Duration.seconds(10)

const readinessTimeout = (runtime: ServiceRuntime, timeout: string | undefined) =>
  runtime.plan.timeout ??
  (timeout === undefined ? undefined : Option.getOrUndefined(Duration.fromInput(timeout as Duration.Input))) ??
  defaultReadinessTimeout

/** Waits until the service is ready as its plugin says, failing fast if it ends first. */
export const wait = Effect.fnUntraced(function* (attempt: Attempt, runtime: ServiceRuntime) {
  const fs = yield* FileSystem.FileSystem
  const readiness = runtime.plan.readiness
  if (readiness.kind === "none") return
  const timeout = readinessTimeout(runtime, readiness.timeout)
  const host = hostOf(attempt, runtime.plan.key)
  const check: Effect.Effect<boolean> =
    readiness.kind === "port"
      ? runtime.port === undefined
        ? Effect.succeed(true)
        : tcpOpen(host, runtime.port, 500)
      : readiness.kind === "log"
        ? Effect.map(
            Effect.all([fs.readFileString(runtime.stdoutPath), fs.readFileString(runtime.stderrPath)]).pipe(
              Effect.orElseSucceed(() => ["", ""])
            ),
            ([out, err]) => new RegExp(readiness.pattern).test(`${out}\n${err}`)
          )
        : probeCommand(attempt, runtime, readiness.command)
  const exitedEarly = runtime.process!.exited.pipe(
    Effect.map(
      (exit) =>
        new Abort({ status: "failed", reason: `${runtime.id} ended before it was ready: ${describeExit(exit)}` })
    )
  )
  const outcome = yield* Effect.raceFirst(
    Effect.map(pollUntil(check, timeout), (ok) => (ok ? undefined : "timeout")),
    exitedEarly
  )
  if (outcome instanceof Abort) return yield* outcome
  if (outcome === "timeout") {
    const what =
      readiness.kind === "port"
        ? `port ${host}:${runtime.port} not open`
        : readiness.kind === "log"
          ? `no output line matching /${readiness.pattern}/`
          : "readiness command never succeeded"
    return yield* new Abort({
      status: "timeout",
      reason: `${runtime.id} not ready after ${Duration.format(timeout)}: ${what}`
    })
  }
})

const probeCommand = (
  attempt: Attempt,
  runtime: ServiceRuntime,
  template: Parameters<typeof ServiceCommand.renderCommand>[0]
): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    const rendered = yield* Render.orFailed(
      ServiceCommand.renderCommand(template, runtime.variables, { cwd: runtime.dir })
    )
    if (rendered instanceof ServiceCommand.TemplateFailed) return false
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const process = yield* attempt.environment.launch({
          id: `${runtime.id}/readiness`,
          command: rendered,
          stdoutPath: `${runtime.dir}/readiness.stdout.log`,
          stderrPath: `${runtime.dir}/readiness.stderr.log`
        })
        const exit = yield* process.exited
        return exit.exitCode === 0
      })
    ).pipe(Effect.orElseSucceed(() => false))
  })
