// Packet capture per service: tcpdump on loopback filtered to the service's ports, started before the service
// and stopped (SIGINT, so it flushes the file) once the services are down. tcpdump missing or refusing to start
// is a warning, never a failure: the capture is an extra, the test is what is judged.
import { type ChildProcess, spawn } from "node:child_process"
import { Watchdog } from "@testbed/commands"
import { Duration, Effect, Scope } from "effect"
import { type Attempt, recordCapture, type ServiceRuntime } from "./attempt.ts"
import { inside } from "./runPath.ts"

export interface Capture {
  readonly path: string
  /** Stops tcpdump and waits for it to exit (the file is complete then); safe to call twice. */
  readonly stop: Effect.Effect<void>
}

const startTimeout = Duration.seconds(10)
const stopTimeout = Duration.seconds(5)

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

const stopChild = (child: ChildProcess): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (exited(child)) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGINT")
  }).pipe(
    Effect.timeoutOption(stopTimeout),
    Effect.andThen(Effect.sync(() => (exited(child) ? undefined : child.kill("SIGKILL")))),
    Effect.ensuring(Effect.sync(() => child.pid !== undefined && Watchdog.release(child.pid)))
  )

/** Spawns tcpdump and waits until it says it is listening (else fails with what it said). */
const spawnTcpdump = (file: string, ports: ReadonlyArray<number>) =>
  Effect.callback<ChildProcess, string>((resume) => {
    const filter = ports.map((port) => `port ${port}`).join(" or ")
    // --immediate-mode: without it packets wait in the kernel's buffer and a short test's are lost at SIGINT.
    // -Z root: as root tcpdump would otherwise drop to its own user, who may not write into the test's directory.
    const args = ["-i", "lo", "-n", "-U", "--immediate-mode", "-Z", "root", "-w", file, filter]
    // Its own process group, guarded by the watchdog: a SIGKILLed run leaves no capture running.
    const child = spawn("tcpdump", args, {
      stdio: ["ignore", "ignore", "pipe"],
      detached: true
    })
    if (child.pid !== undefined) Watchdog.guard(child.pid)
    let said = ""
    child.stderr?.on("data", (chunk: Buffer) => {
      if (said.length < 4096) said += chunk.toString("utf8")
      if (said.includes("listening on")) resume(Effect.succeed(child))
    })
    child.once("error", (error: NodeJS.ErrnoException) =>
      resume(Effect.fail(error.code === "ENOENT" ? "tcpdump is not installed (not on PATH)" : error.message))
    )
    child.once("exit", (code, signal) => {
      if (child.pid !== undefined) Watchdog.release(child.pid)
      resume(Effect.fail(`tcpdump ended (${signal ?? `exit code ${code}`}): ${said.trim()}`))
    })
    return Effect.sync(() => {
      if (!exited(child)) child.kill("SIGKILL")
    })
  }).pipe(
    Effect.timeoutOrElse({
      duration: startTimeout,
      orElse: () => Effect.fail(`tcpdump did not start listening within ${Duration.format(startTimeout)}`)
    })
  )

const startOne = Effect.fnUntraced(function* (
  attempt: Attempt,
  runtime: ServiceRuntime,
  port: number,
  launchScope: Scope.Scope
) {
  const file = yield* inside(runtime.dir, `${runtime.plan.key}.pcap`)
  const started = yield* Effect.result(
    Effect.acquireRelease(spawnTcpdump(file, [port]), stopChild).pipe(Effect.provideService(Scope.Scope, launchScope))
  )
  if (started._tag === "Failure") {
    return yield* Effect.logWarning(`${attempt.test.name}/${runtime.plan.key}: no packet capture: ${started.failure}`)
  }
  recordCapture(runtime, { path: file, stop: stopChild(started.success) })
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
