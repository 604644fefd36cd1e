/**
 * An environment plugin sets up and tears down the place a test's services run: processes on this machine,
 * containers of a stage… Setup is scoped: closing the scope stops every service it launched, so a failed or
 * interrupted test leaves nothing running.
 */
import type { Command, CommandRunner } from "@testbed/commands"
import { ExitCode, type WriteFailed } from "@testbed/events"
import type { Duration, Effect, FileSystem, Option, Path, Scope } from "effect"
import { Runtime, Schema } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import type { ServicePlugin } from "./ServicePlugin.ts"

/** One long-running or run-to-completion process of a service, with its output sent to two log files. */
export interface ServiceLaunch {
  /** `<test>/<service>`: used in messages. */
  readonly id: string
  readonly command: Command.Command
  readonly stdoutPath: string
  readonly stderrPath: string
  /** The service (its key in the test) this process belongs to: where an environment with nodes runs it. */
  readonly node?: string | undefined
}

/** How a service process ended. `stopped` is true when the harness ended it (end of test, timeout). */
export interface ServiceExit {
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stopped: boolean
}

export interface ServiceProcess {
  readonly pid: number | undefined
  /** Waits for the process to end (and its output to be written). */
  readonly exited: Effect.Effect<ServiceExit>
  /** The exit if the process has ended, without waiting. */
  readonly poll: Effect.Effect<Option.Option<ServiceExit>>
  /** Asks the process group to stop (TERM), then KILL after `grace`; returns how it ended. */
  readonly stop: (grace: Duration.Input) => Effect.Effect<ServiceExit>
  /**
   * Completes with the error when the process's output could not be written to its log (a full disk): the run
   * cannot be trusted after that and stops. Never completes otherwise. Optional for environments that do not
   * write logs themselves.
   */
  readonly outputFailed?: Effect.Effect<WriteFailed.WriteFailed> | undefined
}

export class ServiceLaunchFailed extends Schema.TaggedError<ServiceLaunchFailed>()("ServiceLaunchFailed", {
  service: Schema.String,
  program: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `${this.service}: could not start ${this.program}: ${this.reason}`
  }
}

export class EnvironmentSetupFailed extends Schema.TaggedError<EnvironmentSetupFailed>()("EnvironmentSetupFailed", {
  environment: Schema.String,
  test: Schema.String,
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.infrastructure
  }
  override get message(): string {
    return `${this.environment} environment for ${this.test}: ${this.reason}`
  }
}

/** A set-up environment for one test attempt. */
export interface Environment {
  readonly kind: string
  /** The host name services are reached at, from the host and from each other. */
  readonly host: string
  /** A port a service can listen on. */
  readonly allocatePort: Effect.Effect<number, EnvironmentSetupFailed>
  /** Starts a process; it is stopped (group-wide) when the scope closes. */
  readonly launch: (launch: ServiceLaunch) => Effect.Effect<ServiceProcess, ServiceLaunchFailed, Scope.Scope>
  /** The address of one service when services do not share `host` (a container each); default `host`. */
  readonly hostOf?: ((service: string) => string) | undefined
  /** Runs one-off commands (steps) where the services run; without it the harness uses the local runner. */
  readonly runner?: CommandRunner.CommandRunner["Service"] | undefined
  /**
   * The runner of one service's own place (its container), for environments with a node per service, so a step
   * aimed at a service runs where that service runs; undefined falls back to `runner`.
   */
  readonly runnerOf?: ((service: string) => CommandRunner.CommandRunner["Service"] | undefined) | undefined
  /**
   * Whether a service listens on its port, for environments that know better than a probe from this machine
   * could (the fake environment of tests); without it, readiness probes the port itself.
   */
  readonly isListening?: ((service: string, port: number) => Effect.Effect<boolean>) | undefined
  /**
   * The engine's id of the container a service runs in, for environments with a container per service: the
   * harness samples its resources from the engine's stats and applies `execution.limits` through the engine.
   */
  readonly containerOf?: ((service: string) => string | undefined) | undefined
}

/** A service of the test, as an environment that builds nodes per service needs to know it. */
export interface EnvironmentService {
  readonly key: string
  readonly plugin: ServicePlugin
  /** Where the plugin came from ("builtin", its file): its `docker.build` is relative to that file. */
  readonly source: string
}

export interface EnvironmentPlugin {
  readonly name: string
  readonly description: string
  readonly setup: (context: {
    readonly test: string
    readonly outputDir: string
    /** The test's services (servers first); an environment may prepare a place for each. */
    readonly services?: ReadonlyArray<EnvironmentService> | undefined
    /**
     * Host paths the services read (shared assets, the run's certificate): an environment with a file system of
     * its own (a container) shows them at the same path, read-only.
     */
    readonly readOnlyPaths?: ReadonlyArray<string> | undefined
  }) => Effect.Effect<
    Environment,
    EnvironmentSetupFailed,
    // Spelled out, not an alias: declaration emit of packages that infer this type cannot name an alias reached
    // only through `export * as EnvironmentPlugin`.
    Scope.Scope | FileSystem.FileSystem | Path.Path | ChildProcessSpawner.ChildProcessSpawner
  >
}

/** What an out-of-tree environment module must export, checked when it is loaded. */
export const EnvironmentPluginShape = Schema.Struct({
  name: Schema.String.check(Schema.isPattern(/^[a-z0-9][a-z0-9._-]*$/)),
  description: Schema.String,
  setup: Schema.declare((u): u is EnvironmentPlugin["setup"] => typeof u === "function", {
    expected: "a function (context) => Effect<Environment>"
  })
})
