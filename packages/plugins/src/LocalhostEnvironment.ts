/**
 * The default environment: services are processes on this machine, listening on 127.0.0.1 with ports
 * allocated free by the kernel. Each process runs in its own process group, which is ended when the
 * test's scope closes — or by the `Watchdog` when this process dies without closing it (SIGKILL). Their output
 * goes to bounded log files (`OutputFile`: the first 1 MiB and the latest 4–8 MiB).
 */
import * as Net from "node:net"
import { Deferred, Duration, Effect, FileSystem, Fiber, Option, Ref, Scope, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { ExitStatus, HelperSpawner, OutputFile } from "@testbed/commands"
import { WriteFailed } from "@testbed/events"
import {
  type Environment,
  type EnvironmentPlugin,
  EnvironmentSetupFailed,
  type ServiceExit,
  type ServiceLaunch,
  ServiceLaunchFailed,
  type ServiceProcess
} from "./EnvironmentPlugin.ts"

/** Asks the kernel for a free TCP port on 127.0.0.1 (no bookkeeping: an environment keeps its own, see `make`). */
export const allocatePort = (test: string): Effect.Effect<number, EnvironmentSetupFailed> =>
  Effect.callback<number, EnvironmentSetupFailed>((resume) => {
    const server = Net.createServer()
    server.once("error", (error) =>
      resume(Effect.fail(new EnvironmentSetupFailed({ environment: "localhost", test, reason: error.message })))
    )
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resume(Effect.succeed(port)))
    })
  })

/**
 * Ports handed out and not given back: tests running side by side never share one, even if the kernel offers it
 * twice between a probe and the service binding it. A port goes back when the environment that took it closes, so
 * the set holds only the ports of environments still up.
 */
const makePorts = (freePort: (test: string) => Effect.Effect<number, EnvironmentSetupFailed>) => {
  const inUse = new Set<number>()
  return (test: string, scope: Scope.Scope): Effect.Effect<number, EnvironmentSetupFailed> =>
    freePort(test).pipe(
      Effect.repeat({ until: (port) => !inUse.has(port), times: 20 }),
      Effect.tap((port) =>
        Effect.andThen(
          Effect.sync(() => inUse.add(port)),
          Scope.addFinalizer(
            scope,
            Effect.sync(() => inUse.delete(port))
          )
        )
      )
    )
}

const encoder = new TextEncoder()

/** Starts one service process with its stdout and stderr written to files. */
export const launch = Effect.fn("LocalhostEnvironment.launch")(function* (service: ServiceLaunch) {
  // Started by the spawn helper (a small process forks, not this one), guarded by the watchdog.
  const spawner = yield* HelperSpawner.guarded
  const fs = yield* FileSystem.FileSystem
  const command = service.command
  const program = command.program
  if (program === undefined) {
    return yield* new ServiceLaunchFailed({
      service: service.id,
      program: "sh",
      reason: "services are started as program + arguments, not shell strings"
    })
  }
  // Created up front so a service that never writes still has (empty) logs to link from a report.
  for (const file of [service.stdoutPath, service.stderrPath]) {
    yield* fs
      .writeFileString(file, "")
      .pipe(
        Effect.mapError((error) => new ServiceLaunchFailed({ service: service.id, program, reason: error.message }))
      )
  }
  const handle = yield* spawner
    .spawn(
      ChildProcess.make(program, [...(command.args ?? [])], {
        ...(command.cwd === undefined ? {} : { cwd: command.cwd }),
        ...(command.env === undefined ? {} : { env: command.env, extendEnv: command.envMode !== "replace" }),
        stdin: command.stdin === undefined ? "ignore" : Stream.make(encoder.encode(command.stdin)),
        stdout: "pipe",
        stderr: "pipe",
        killSignal: "SIGTERM",
        forceKillAfter: command.killGracePeriod ?? Duration.seconds(2)
      })
    )
    .pipe(Effect.mapError((error) => new ServiceLaunchFailed({ service: service.id, program, reason: error.message })))
  const outputFailed = yield* Deferred.make<WriteFailed.WriteFailed>()
  const record = (path: string, output: Stream.Stream<Uint8Array, unknown>) =>
    OutputFile.write(path, output).pipe(
      Effect.provideService(FileSystem.FileSystem, fs),
      Effect.catch((error) =>
        error instanceof WriteFailed.WriteFailed ? Deferred.succeed(outputFailed, error) : Effect.void
      ),
      Effect.asVoid,
      Effect.forkScoped
    )
  const stdout = yield* record(service.stdoutPath, handle.stdout)
  const stderr = yield* record(service.stderrPath, handle.stderr)
  const stopped = yield* Ref.make(false)
  const exit = yield* Deferred.make<ServiceExit>()
  yield* handle.exitCode.pipe(
    Effect.map((code): Omit<ServiceExit, "stopped"> => ({ exitCode: code, signal: null })),
    Effect.catch((error) => Effect.succeed({ exitCode: null, signal: ExitStatus.signalOf(error) })),
    // The pipes close once every process of the group is gone; bounded in case a grandchild keeps one open.
    Effect.tap(() => Effect.ignore(Effect.timeout(Fiber.awaitAll([stdout, stderr]), "2 seconds"))),
    Effect.flatMap((ended) =>
      Effect.flatMap(Ref.get(stopped), (wasStopped) => Deferred.succeed(exit, { ...ended, stopped: wasStopped }))
    ),
    Effect.forkScoped
  )
  const process: ServiceProcess = {
    pid: handle.pid,
    exited: Deferred.await(exit),
    poll: Deferred.poll(exit).pipe(
      Effect.flatMap((polled) => (Option.isSome(polled) ? Effect.map(polled.value, Option.some) : Effect.succeedNone))
    ),
    stop: Effect.fn("LocalhostEnvironment.stop")(function* (grace: Duration.Input) {
      if (yield* Deferred.isDone(exit)) return yield* Deferred.await(exit)
      yield* Ref.set(stopped, true)
      yield* Effect.ignore(handle.kill({ killSignal: "SIGTERM", forceKillAfter: grace }))
      return yield* Deferred.await(exit)
    }),
    outputFailed: Deferred.await(outputFailed)
  }
  return process
})

export interface Options {
  /** Where free ports come from; default the kernel (`allocatePort`). */
  readonly freePort?: (test: string) => Effect.Effect<number, EnvironmentSetupFailed>
}

/**
 * A localhost environment plugin with its own set of ports in use (the registry makes one per layer, so nothing is
 * shared through module state).
 */
export const make = (options: Options = {}): EnvironmentPlugin => {
  const ports = makePorts(options.freePort ?? allocatePort)
  return {
    name: "localhost",
    description: "Processes on this machine, listening on 127.0.0.1 with free ports (the default).",
    setup: Effect.fn("LocalhostEnvironment.setup")(function* ({ test }) {
      const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
      const fs = yield* FileSystem.FileSystem
      const scope = yield* Effect.scope
      return {
        kind: "localhost",
        host: "127.0.0.1",
        allocatePort: ports(test, scope),
        launch: (service) =>
          launch(service).pipe(
            Effect.provideService(ChildProcessSpawner.ChildProcessSpawner, spawner),
            Effect.provideService(FileSystem.FileSystem, fs)
          )
      } satisfies Environment
    })
  }
}
