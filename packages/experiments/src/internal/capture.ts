// Packet capture per service: tcpdump on loopback filtered to the service's ports, started before the service
// and stopped (SIGINT, so it flushes the file) once the services are down. tcpdump missing or refusing to start
// is a warning, never a failure: the capture is an extra, the test is what is judged.
// Started by the spawn helper, as services and commands are (@testbed/commands HelperSpawner: a small process
// forks, not this one): a capture is one tcpdump per service with a port, per attempt, so as many forks as the
// services themselves, each a copy of a big runner's page tables and its event loop stopped until the exec.
import { ExitStatus, HelperSpawner } from "@testbed/commands"
import { Deferred, Duration, Effect, Scope, Stream } from "effect"
import { ChildProcess } from "effect/process"
import { type Attempt, recordCapture, type ServiceRuntime } from "./attempt.ts"
import { inside } from "./runPath.ts"

export interface Capture {
  readonly path: string
  /** Stops tcpdump and waits for it to exit (the file is complete then); safe to call twice. */
  readonly stop: Effect.Effect<void>
}

const startTimeout = Duration.seconds(10)
const stopTimeout = Duration.seconds(5)

/** What tcpdump says on stderr, kept up to this many characters (it says a line at start and one at the end). */
const saidBound = 4096

/**
 * Spawns tcpdump in `scope` (closing it stops tcpdump: SIGINT, then SIGKILL after `stopTimeout`) and waits until it
 * says it is listening (else fails with what it said); the stop.
 */
const spawnTcpdump = Effect.fnUntraced(function* (file: string, ports: ReadonlyArray<number>, scope: Scope.Scope) {
  // Its own process group, guarded by the watchdog: a SIGKILLed run leaves no capture running.
  const spawner = yield* HelperSpawner.guarded
  const filter = ports.map((port) => `port ${port}`).join(" or ")
  // --immediate-mode: without it packets wait in the kernel's buffer and a short test's are lost at SIGINT.
  // -Z root: as root tcpdump would otherwise drop to its own user, who may not write into the test's directory.
  const args = ["-i", "lo", "-n", "-U", "--immediate-mode", "-Z", "root", "-w", file, filter]
  const handle = yield* spawner
    .spawn(
      ChildProcess.make("tcpdump", args, {
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
        killSignal: "SIGINT",
        forceKillAfter: stopTimeout
      })
    )
    .pipe(
      Effect.provideService(Scope.Scope, scope),
      Effect.mapError((error) =>
        error.reason._tag === "NotFound" ? "tcpdump is not installed (not on PATH)" : error.message
      )
    )
  const stop = Effect.ignore(handle.kill({ killSignal: "SIGINT", forceKillAfter: stopTimeout }))
  // Read to its end (a pipe nobody reads would block tcpdump's last words), keeping the first `saidBound`.
  let said = ""
  const listening = yield* Deferred.make<void>()
  yield* handle.stderr.pipe(
    Stream.decodeText(),
    Stream.runForEach((text) =>
      Effect.suspend(() => {
        if (said.length < saidBound) said += text
        return said.includes("listening on") ? Deferred.succeed(listening, undefined) : Effect.void
      })
    ),
    Effect.ignore,
    Effect.forkIn(scope)
  )
  const ended = handle.exitCode.pipe(
    Effect.map((code) => `exit code ${code}`),
    Effect.catch((error) => Effect.succeed(ExitStatus.signalOf(error) ?? error.message)),
    Effect.flatMap((how) => Effect.fail(`tcpdump ended (${how}): ${said.trim()}`))
  )
  yield* Effect.raceFirst(Deferred.await(listening), ended).pipe(
    Effect.timeoutOrElse({
      duration: startTimeout,
      orElse: () => Effect.fail(`tcpdump did not start listening within ${Duration.format(startTimeout)}`)
    }),
    Effect.tapError(() => stop)
  )
  return stop
})

const startOne = Effect.fnUntraced(function* (
  attempt: Attempt,
  runtime: ServiceRuntime,
  port: number,
  launchScope: Scope.Scope
) {
  const file = yield* inside(runtime.dir, `${runtime.plan.key}.pcap`)
  const started = yield* Effect.result(spawnTcpdump(file, [port], launchScope))
  if (started._tag === "Failure") {
    return yield* Effect.logWarning(`${attempt.test.name}/${runtime.plan.key}: no packet capture: ${started.failure}`)
  }
  recordCapture(runtime, { path: file, stop: started.success })
})

/** Starts a capture for every service with a port (localhost only; elsewhere a warning). */
export const startAll = Effect.fn("Capture.startAll")(function* (attempt: Attempt, launchScope: Scope.Scope) {
  if (attempt.environment.kind !== "localhost") {
    return yield* Effect.logWarning(
      `${attempt.test.name}: packet capture is only done on localhost, not in ${attempt.environment.kind}`
    )
  }
  for (const runtime of attempt.services.values()) {
    if (runtime.port !== undefined) yield* startOne(attempt, runtime, runtime.port, launchScope)
  }
})

/** Stops every capture (after the services are down, so their last packets are in). */
export const stopAll = (attempt: Attempt): Effect.Effect<void> =>
  Effect.forEach([...attempt.services.values()], (runtime) => runtime.capture?.stop ?? Effect.void, {
    discard: true
  })
