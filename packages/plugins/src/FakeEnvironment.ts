/**
 * An environment plugin that starts no process, for unit tests of what runs services (the experiments harness):
 * each launch plays a scripted process on Effect's clock — it writes its output to its log files, ends with an exit
 * code after a while or runs until stopped — and steps run through the runner given (e.g. `CommandRunner.layerTest`).
 * TestClock decides when anything ends; ports are numbers handed out in order. `layerTest` is a plugin registry
 * whose `localhost` environment is this one, so a plan made for this machine runs on it unchanged.
 */
import type { CommandRunner } from "@testbed/commands"
import { Clock, Deferred, type Duration, Effect, FileSystem, type Layer, Option } from "effect"
import {
  type Environment,
  type EnvironmentPlugin,
  type ServiceExit,
  type ServiceLaunch,
  ServiceLaunchFailed,
  type ServiceProcess
} from "./EnvironmentPlugin.ts"
import * as PluginRegistry from "./PluginRegistry.ts"

/** What one launched process does. Default: it runs, silently, until stopped. */
export interface ProcessScript {
  /** Ends on its own this long after it started; absent: runs until stopped. */
  readonly exitAfter?: Duration.Input | undefined
  readonly exitCode?: number | undefined
  /** Ended by this signal instead of an exit code. */
  readonly signal?: string | undefined
  /** Written to its stdout / stderr log as soon as it starts. */
  readonly stdout?: string | undefined
  readonly stderr?: string | undefined
  /** It cannot be started: the launch fails with this reason. */
  readonly cannotStart?: string | undefined
  /** Whether it listens on its service's port while it runs (what port readiness asks). Default true. */
  readonly listening?: boolean | undefined
}

/** A launched process's script (it sees the launch: `<test>/<service>` id, command, log paths). */
export type Script = (launch: ServiceLaunch) => ProcessScript | Effect.Effect<ProcessScript>

export interface Options {
  /** The plugin's name; default `localhost`, so it stands in for this machine in a registry. */
  readonly name?: string | undefined
  readonly script: Script
  /** Where steps run; without it, the harness's own default runner. */
  readonly runner?: CommandRunner.CommandRunner["Service"] | undefined
  /** The first port handed out; each next one is one higher. Default 20000. */
  readonly firstPort?: number | undefined
}

/** A launch as the fake saw it: for tests to check what was started, with what command. */
export interface Launched {
  readonly launch: ServiceLaunch
  /** Epoch millis on the Clock. */
  readonly at: number
}

const scripted = (script: Script, launch: ServiceLaunch): Effect.Effect<ProcessScript> => {
  const played = script(launch)
  return Effect.isEffect(played) ? played : Effect.succeed(played)
}

/** Plays one process: logs written, the exit decided by the script or by `stop`, whichever comes first. */
const play = Effect.fn("FakeEnvironment.play")(function* (launch: ServiceLaunch, script: ProcessScript) {
  const fs = yield* FileSystem.FileSystem
  const program = launch.command.program ?? "sh"
  const writeLog = (path: string, text: string) =>
    fs
      .writeFileString(path, text)
      .pipe(Effect.mapError((error) => new ServiceLaunchFailed({ service: launch.id, program, reason: error.message })))
  yield* writeLog(launch.stdoutPath, script.stdout ?? "")
  yield* writeLog(launch.stderrPath, script.stderr ?? "")
  const exit = yield* Deferred.make<ServiceExit>()
  if (script.exitAfter !== undefined) {
    const ended: ServiceExit = {
      exitCode: script.signal === undefined ? (script.exitCode ?? 0) : null,
      signal: script.signal ?? null,
      stopped: false
    }
    yield* Effect.forkScoped(Effect.delay(Deferred.succeed(exit, ended), script.exitAfter))
  }
  // Closing the launch scope ends the process, as the real environments do.
  yield* Effect.addFinalizer(() => Deferred.succeed(exit, { exitCode: null, signal: "SIGKILL", stopped: true }))
  const process: ServiceProcess = {
    pid: undefined,
    exited: Deferred.await(exit),
    poll: Effect.flatMap(Deferred.poll(exit), (polled) =>
      Option.isSome(polled) ? Effect.map(polled.value, Option.some) : Effect.succeedNone
    ),
    // Stopped at once (a process that ignores TERM is the real environments' business).
    stop: () =>
      Effect.andThen(Deferred.succeed(exit, { exitCode: null, signal: "SIGTERM", stopped: true }), Deferred.await(exit))
  }
  return process
})

/** The fake environment plugin, with a record of every launch (`launched`). */
export const make = (
  options: Options
): { readonly plugin: EnvironmentPlugin; readonly launched: Effect.Effect<ReadonlyArray<Launched>> } => {
  const launched: Array<Launched> = []
  let nextPort = options.firstPort ?? 20000
  const plugin: EnvironmentPlugin = {
    name: options.name ?? "localhost",
    description: "Scripted processes on Effect's clock (for tests): nothing is started.",
    setup: Effect.fn("FakeEnvironment.setup")(function* () {
      const fs = yield* FileSystem.FileSystem
      // Per service of this attempt: whether its latest process listens right now.
      const listening = new Map<string, Effect.Effect<boolean>>()
      const launch = Effect.fn("FakeEnvironment.launch")(function* (service: ServiceLaunch) {
        launched.push({ launch: service, at: yield* Clock.currentTimeMillis })
        const script = yield* scripted(options.script, service)
        if (script.cannotStart !== undefined) {
          const program = service.command.program ?? "sh"
          return yield* new ServiceLaunchFailed({ service: service.id, program, reason: script.cannotStart })
        }
        const process = yield* play(service, script).pipe(Effect.provideService(FileSystem.FileSystem, fs))
        if (service.node !== undefined) {
          const open = script.listening ?? true
          listening.set(
            service.node,
            Effect.map(process.poll, (exit) => open && Option.isNone(exit))
          )
        }
        return process
      })
      return {
        kind: "fake",
        host: "127.0.0.1",
        allocatePort: Effect.sync(() => nextPort++),
        launch,
        isListening: (service) => listening.get(service) ?? Effect.succeed(false),
        ...(options.runner === undefined ? {} : { runner: options.runner })
      } satisfies Environment
    })
  }
  return { plugin, launched: Effect.sync(() => [...launched]) }
}

/**
 * A plugin registry (built-in service plugins, no modules loaded) whose `localhost` environment is a fake playing
 * `options.script`: what experiments' unit tests run their plans on.
 */
export const layerTest = (options: Options): Layer.Layer<PluginRegistry.PluginRegistry, PluginRegistry.PluginInvalid> =>
  PluginRegistry.PluginRegistry.layerTest({ environments: [make(options).plugin] })
