// The state of one test attempt shared by its services, steps and assertions.
import type { Command } from "@testbed/commands"
import { ExitCode, type Machines, type StateMachine, type TestEvent, WriteFailed } from "@testbed/events"
import type { EnvironmentPlugin, ServicePlugin } from "@testbed/plugins"
import { type Deferred, Effect, Runtime, Schema } from "effect"
import type { ServicePlan, TestPlan } from "../Plan.ts"
import type * as Replay from "../Replay.ts"
import type { Capture } from "./capture.ts"
import type { Applied } from "./execution.ts"
import type { Usage } from "./resources.ts"

/** Ends an attempt early with a status and the reason a user reads in the report. */
export class Abort extends Schema.TaggedError<Abort>()("Abort", {
  status: Schema.Literals(["failed", "timeout", "unsupported", "interrupted", "skipped", "passed"]),
  reason: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.testFailed
  }
  override get message(): string {
    return this.reason
  }
}

export type Status = TestEvent.TestStatus

const writable: unique symbol = Symbol("Attempt.writable")

/** How a service ended; `limit` names the limit of its execution environment that ended it. */
export type ServiceExit = EnvironmentPlugin.ServiceExit & { readonly limit?: string | undefined }

/**
 * One service of an attempt. Read by everyone; written only through the operations of this module (`assignPort`,
 * `setServiceVariables`, `setCommand`, `recordExecution`, `recordProcess`, `recordExit`, `recordCapture`,
 * `recordUsage`), so a new writer shows up here.
 */
export interface ServiceRuntime {
  readonly plan: ServicePlan
  /** `<test>/<service>`: the entity id of its events. */
  readonly id: string
  readonly dir: string
  readonly stdoutPath: string
  readonly stderrPath: string
  readonly machine: StateMachine.StateMachine<Machines.ServiceState>
  readonly port: number | undefined
  readonly variables: Readonly<Record<string, ServicePlugin.ParameterValue>>
  readonly command: Command.Command | undefined
  readonly process: EnvironmentPlugin.ServiceProcess | undefined
  readonly exit: ServiceExit | undefined
  /** The execution environment it runs in (tools, limits), when it declares one. */
  readonly execution: Applied | undefined
  /** Its packet capture, when the test asked for one and tcpdump started. */
  readonly capture: Capture | undefined
  /** What it used so far, when the test samples resources (a local process only). */
  readonly usage: Usage | undefined
  /** Completed once the service has reached DESTROYED and its exit was published. */
  readonly done: Deferred.Deferred<void>
  /**
   * Completed once start-up (and readiness) is over, so only one fiber moves the machine at a time: `true` when the
   * service became ready, `false` when start-up ended without it (its readiness check failed, or teardown came first).
   */
  readonly started: Deferred.Deferred<boolean>
  /** The same record, writable, under a key only this module names: a ServiceRuntime is made by `makeServiceRuntime`. */
  readonly [writable]: ServiceState
}

/** What a service's life fills in, from its deployment to its end: the writable fields of its record. */
interface ServiceState {
  port: number | undefined
  variables: Readonly<Record<string, ServicePlugin.ParameterValue>>
  command: Command.Command | undefined
  process: EnvironmentPlugin.ServiceProcess | undefined
  exit: ServiceExit | undefined
  execution: Applied | undefined
  capture: Capture | undefined
  usage: Usage | undefined
}

export interface StepResult {
  readonly name: string
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdoutPath: string
  readonly stderrPath: string
}

/**
 * The state of one attempt, read by its services, steps and assertions. Only the operations below write it, each
 * with one writer: `setEnvironment` (TestCase, once the environment is up), `addService` (Services.prepare),
 * `addVariables` (Services.deployAll), `recordStep` (the run and replay steps), `recordReplay` (the replay step).
 * Each service's own state is in its ServiceRuntime, written through the operations on it below by the service's
 * lifecycle (services.ts) and what it starts (capture, resources).
 */
export interface Attempt {
  readonly test: TestPlan
  readonly number: number
  readonly dir: string
  readonly runDir: string
  /** The environment once it is up; before that, launching is a bug. */
  readonly environment: EnvironmentPlugin.Environment
  readonly services: ReadonlyMap<string, ServiceRuntime>
  readonly steps: ReadonlyMap<string, StepResult>
  /** Outcomes of replay steps by name (or why there is none). */
  readonly replays: ReadonlyMap<string, Replay.Outcome | string>
  /** Variables every template of this attempt sees (test_dir, `<service>.port`…; services.ts adds each service's). */
  readonly variables: Readonly<Record<string, ServicePlugin.ParameterValue>>
  /** Completed with the reason when a long-running service ends on its own (a crash). */
  readonly crashed: Deferred.Deferred<Abort>
  /** Completed when a file of the run could not be written (a full disk): the whole run stops. */
  readonly fatal: Deferred.Deferred<WriteFailed.WriteFailed>
  /** The writable side, under a key only this module names: an Attempt is made by `makeAttempt`. */
  readonly [writable]: Writable
}

const unready: EnvironmentPlugin.Environment = {
  kind: "none",
  host: "127.0.0.1",
  allocatePort: Effect.die("environment used before it was set up"),
  launch: () => Effect.die("environment used before it was set up")
}

/** The writable side of an attempt, reached only through the operations of this module. */
interface Writable {
  environment: EnvironmentPlugin.Environment
  readonly variables: Record<string, ServicePlugin.ParameterValue>
  readonly services: Map<string, ServiceRuntime>
  readonly steps: Map<string, StepResult>
  readonly replays: Map<string, Replay.Outcome | string>
}

export const makeAttempt = (
  fields: Omit<Attempt, "environment" | "services" | "steps" | "replays" | typeof writable>
): Attempt => {
  const state: Writable = {
    environment: unready,
    variables: { ...fields.variables },
    services: new Map(),
    steps: new Map(),
    replays: new Map()
  }
  return {
    ...fields,
    variables: state.variables,
    get environment() {
      return state.environment
    },
    services: state.services,
    steps: state.steps,
    replays: state.replays,
    [writable]: state
  }
}

const writableOf = (attempt: Attempt): Writable => attempt[writable]

export const setEnvironment = (attempt: Attempt, environment: EnvironmentPlugin.Environment): void => {
  writableOf(attempt).environment = environment
}

export const addService = (attempt: Attempt, runtime: ServiceRuntime): void => {
  writableOf(attempt).services.set(runtime.plan.key, runtime)
}

/** Adds variables every later template of the attempt sees (a service's host, dir and port). */
export const addVariables = (
  attempt: Attempt,
  variables: Readonly<Record<string, ServicePlugin.ParameterValue>>
): void => {
  Object.assign(writableOf(attempt).variables, variables)
}

export const recordStep = (attempt: Attempt, result: StepResult): void => {
  writableOf(attempt).steps.set(result.name, result)
}

export const recordReplay = (attempt: Attempt, name: string, outcome: Replay.Outcome | string): void => {
  writableOf(attempt).replays.set(name, outcome)
}

/** A service as `Services.prepare` makes it: nothing deployed, started or ended yet. */
export const makeServiceRuntime = (
  fields: Pick<ServiceRuntime, "plan" | "id" | "dir" | "stdoutPath" | "stderrPath" | "machine" | "done" | "started">
): ServiceRuntime => {
  const runtime: ServiceState & typeof fields = {
    ...fields,
    port: undefined,
    variables: {},
    command: undefined,
    process: undefined,
    exit: undefined,
    execution: undefined,
    capture: undefined,
    usage: undefined
  }
  // The record under its own key, writable there: readers get the readonly ServiceRuntime.
  return Object.assign(runtime, { [writable]: runtime })
}

/** The port a server listens on (fixed or allocated by the environment), at deployment. */
export const assignPort = (runtime: ServiceRuntime, port: number): void => {
  runtime[writable].port = port
}

/** What the service's templates see, its parameters rendered, at deployment. */
export const setServiceVariables = (
  runtime: ServiceRuntime,
  variables: Readonly<Record<string, ServicePlugin.ParameterValue>>
): void => {
  runtime[writable].variables = variables
}

/** The rendered command, at deployment. */
export const setCommand = (runtime: ServiceRuntime, command: Command.Command): void => {
  runtime[writable].command = command
}

/** The execution environment applied to it, before its launch. */
export const recordExecution = (runtime: ServiceRuntime, execution: Applied | undefined): void => {
  runtime[writable].execution = execution
}

/** Its process, once launched. */
export const recordProcess = (runtime: ServiceRuntime, process: EnvironmentPlugin.ServiceProcess): void => {
  runtime[writable].process = process
}

/** How it ended, once its process is gone. */
export const recordExit = (runtime: ServiceRuntime, exit: ServiceExit): void => {
  runtime[writable].exit = exit
}

/** Its packet capture, once tcpdump listens. */
export const recordCapture = (runtime: ServiceRuntime, capture: Capture): void => {
  runtime[writable].capture = capture
}

/** Its resource usage, once sampling started. */
export const recordUsage = (runtime: ServiceRuntime, usage: Usage): void => {
  runtime[writable].usage = usage
}

/** A file or directory of the run could not be written: the error that stops the run. */
export const writeFailed =
  (path: string) =>
  (error: unknown): WriteFailed.WriteFailed =>
    WriteFailed.fromError(path, error)

/** "exit code 3", "killed by SIGTERM", or "killed by its memory limit (64.0 MB) (SIGKILL)". */
export const describeExit = (exit: {
  readonly exitCode: number | null
  readonly signal: string | null
  readonly limit?: string | undefined
}): string =>
  exit.limit !== undefined
    ? `killed by ${exit.limit} (${exit.signal})`
    : exit.signal !== null
      ? `killed by ${exit.signal}`
      : `exit code ${exit.exitCode}`

/** Where a service is reached: its own address when the environment gives each service one (containers). */
export const hostOf = (attempt: Attempt, service: string): string =>
  attempt.environment.hostOf?.(service) ?? attempt.environment.host
