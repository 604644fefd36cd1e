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

export interface ServiceRuntime {
  readonly plan: ServicePlan
  /** `<test>/<service>`: the entity id of its events. */
  readonly id: string
  readonly dir: string
  readonly stdoutPath: string
  readonly stderrPath: string
  readonly machine: StateMachine.StateMachine<Machines.ServiceState>
  port: number | undefined
  variables: Record<string, ServicePlugin.ParameterValue>
  command: Command.Command | undefined
  process: EnvironmentPlugin.ServiceProcess | undefined
  /** How it ended; `limit` names the limit of its execution environment that ended it. */
  exit: (EnvironmentPlugin.ServiceExit & { readonly limit?: string | undefined }) | undefined
  /** The execution environment it runs in (tools, limits), when it declares one. */
  execution?: Applied | undefined
  /** Its packet capture, when the test asked for one and tcpdump started. */
  capture?: Capture | undefined
  /** What it used so far, when the test samples resources (a local process only). */
  usage?: Usage | undefined
  /** Completed once the service has reached DESTROYED and its exit was published. */
  readonly done: Deferred.Deferred<void>
  /** Opened once start-up (and readiness) is over, so only one fiber moves the machine at a time. */
  readonly started: Deferred.Deferred<void>
}

export interface StepResult {
  readonly name: string
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdoutPath: string
  readonly stderrPath: string
}

const writable: unique symbol = Symbol("Attempt.writable")

/**
 * The state of one attempt, read by its services, steps and assertions. Only the operations below write it, each
 * with one writer: `setEnvironment` (TestCase, once the environment is up), `addService` (Services.prepare),
 * `recordStep` (the run and replay steps), `recordReplay` (the replay step). Each service's own runtime state is
 * in its ServiceRuntime, written by the service's lifecycle (services.ts) and what it starts (capture, resources).
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
  readonly variables: Record<string, ServicePlugin.ParameterValue>
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
  readonly services: Map<string, ServiceRuntime>
  readonly steps: Map<string, StepResult>
  readonly replays: Map<string, Replay.Outcome | string>
}

export const makeAttempt = (
  fields: Omit<Attempt, "environment" | "services" | "steps" | "replays" | typeof writable>
): Attempt => {
  const state: Writable = { environment: unready, services: new Map(), steps: new Map(), replays: new Map() }
  return {
    ...fields,
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

export const recordStep = (attempt: Attempt, result: StepResult): void => {
  writableOf(attempt).steps.set(result.name, result)
}

export const recordReplay = (attempt: Attempt, name: string, outcome: Replay.Outcome | string): void => {
  writableOf(attempt).replays.set(name, outcome)
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
