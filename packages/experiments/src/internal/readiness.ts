// Readiness: when a started service can be talked to — its port is listening, a line appeared in its output, or a
// probe command succeeded — bounded by a timeout, and cut short if the process ends first. A port on this machine
// is checked in the kernel's socket table, without connecting: a one-shot server (socat without `fork`) would take
// a probe's connection for its only client.
import { ServiceCommand } from "@testbed/plugins"
import { Duration, Effect, type FileSystem, type Path } from "effect"
import type { PlannedReadiness } from "../Plan.ts"
import * as Render from "./render.ts"
import { Abort, type Attempt, describeExit, hostOf, type ServiceRuntime } from "./attempt.ts"
import * as Execution from "./execution.ts"
import * as Output from "./output.ts"
import { listening, pollUntil, tcpOpen } from "./probe.ts"
import { inside } from "./runPath.ts"

/** The check polled, and what to say when it never passed. */
interface Probe {
  readonly check: Effect.Effect<boolean, never, FileSystem.FileSystem | Path.Path>
  readonly failure: () => string
}

/** On this machine, the socket table (no connection made); elsewhere (a container's address), a TCP connect. */
const portProbe = (attempt: Attempt, runtime: ServiceRuntime): Probe => {
  const port = runtime.port
  if (port === undefined) return { check: Effect.succeed(true), failure: () => "" }
  const host = hostOf(attempt, runtime.plan.key)
  const told = attempt.environment.isListening
  if (told !== undefined) {
    return {
      check: told(runtime.plan.key, port),
      failure: () => `port ${host}:${port} not listening (probe: the ${attempt.environment.kind} environment)`
    }
  }
  let kernel: boolean | undefined
  const local = attempt.environment.kind === "localhost"
  return {
    check: local
      ? Effect.flatMap(listening(port), (answer) => {
          kernel = answer
          // Without a readable socket table (not Linux), a connect is the only way to know.
          return answer === undefined ? tcpOpen(host, port, 500) : Effect.succeed(answer)
        })
      : tcpOpen(host, port, 500),
    failure: () =>
      local && kernel !== undefined
        ? `port ${host}:${port} not listening (probe: the kernel's socket table, /proc/net/tcp and tcp6, shows no listener)`
        : `port ${host}:${port} not open (probe: a TCP connect was refused or timed out)`
  }
}

const logProbe = (runtime: ServiceRuntime, readiness: Extract<PlannedReadiness, { kind: "log" }>): Probe => {
  const stdout = Output.scanner(runtime.stdoutPath, readiness.pattern)
  const stderr = Output.scanner(runtime.stderrPath, readiness.pattern)
  return {
    check: Effect.flatMap(stdout, (found) => (found ? Effect.succeed(true) : stderr)),
    failure: () => `no output line matching /${readiness.pattern.source}/ (probe: the service's stdout and stderr logs)`
  }
}

/** Waits until the service is ready as its plugin says, failing fast if it ends first. */
export const wait = Effect.fnUntraced(function* (attempt: Attempt, runtime: ServiceRuntime) {
  const readiness = runtime.plan.readiness
  if (readiness.kind === "none") return
  const timeout = readiness.timeout
  const probe: Probe =
    readiness.kind === "port"
      ? portProbe(attempt, runtime)
      : readiness.kind === "log"
        ? logProbe(runtime, readiness)
        : {
            check: probeCommand(attempt, runtime, readiness.command),
            failure: () => "readiness command never succeeded (probe: its exit code)"
          }
  // A server that declares the case unsupported (the interop runner's 127) usually does so before it listens.
  const unsupportedCodes = runtime.plan.plugin.unsupportedExitCodes ?? []
  // The only report of such an exit (the crash watcher leaves it to this check): it says what a crash report would,
  // a limit that killed the process included.
  const exitedEarly = runtime.process!.exited.pipe(
    Effect.flatMap((ended) => Execution.withLimit(runtime.execution, ended)),
    Effect.map((exit) =>
      exit.exitCode !== null && unsupportedCodes.includes(exit.exitCode)
        ? new Abort({
            status: "unsupported",
            reason: `${runtime.plan.key} (${runtime.plan.plugin.name}) does not support this test (exit code ${exit.exitCode})`
          })
        : new Abort({ status: "failed", reason: `${runtime.id} ended before it was ready: ${describeExit(exit)}` })
    )
  )
  const outcome = yield* Effect.raceFirst(
    Effect.map(pollUntil(probe.check, timeout), (ok) => (ok ? undefined : "timeout")),
    exitedEarly
  )
  if (outcome instanceof Abort) return yield* outcome
  if (outcome === "timeout") {
    return yield* new Abort({
      status: "timeout",
      reason: `${runtime.id} not ready after ${Duration.format(timeout)}: ${probe.failure()}`
    })
  }
})

const probeCommand = Effect.fn("Readiness.probeCommand")(
  function* (attempt: Attempt, runtime: ServiceRuntime, template: Parameters<typeof ServiceCommand.renderCommand>[0]) {
    const rendered = yield* Render.orFailed(
      ServiceCommand.renderCommand(template, runtime.variables, { cwd: runtime.dir })
    )
    if (rendered instanceof ServiceCommand.TemplateFailed) return false
    const stdoutPath = yield* inside(runtime.dir, "readiness.stdout.log")
    const stderrPath = yield* inside(runtime.dir, "readiness.stderr.log")
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const process = yield* attempt.environment.launch({
          id: `${runtime.id}/readiness`,
          command: rendered,
          stdoutPath,
          stderrPath
        })
        const exit = yield* process.exited
        return exit.exitCode === 0
      })
    )
  },
  Effect.orElseSucceed(() => false)
)
