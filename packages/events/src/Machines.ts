/**
 * The state machines of PANTHER (COMPAT.md §3), shipped as data: service, test, experiment, environment.
 */
import { define } from "./StateMachine.ts"

const fromEach = <S extends string>(froms: ReadonlyArray<S>, to: ReadonlyArray<S>) =>
  Object.fromEntries(froms.map((from) => [from, to])) as { [K in S]?: ReadonlyArray<S> }

const merge = <S extends string>(...tables: ReadonlyArray<{ readonly [K in S]?: ReadonlyArray<S> }>) => {
  const out: { [K in S]?: Array<S> } = {}
  for (const table of tables) {
    for (const [from, tos] of Object.entries(table) as Array<[S, ReadonlyArray<S>]>) {
      const list = out[from] ?? []
      out[from] = list
      for (const to of tos) if (!list.includes(to)) list.push(to)
    }
  }
  return out as { readonly [K in S]?: ReadonlyArray<S> }
}

const serviceStates = [
  "CREATED",
  "PREPARING",
  "PREPARED",
  "DEPLOYING",
  "DEPLOYED",
  "STARTING",
  "RUNNING",
  "READY",
  "STOPPING",
  "STOPPED",
  "ERROR",
  "DESTROYING",
  "DESTROYED"
] as const
export type ServiceState = (typeof serviceStates)[number]

/** The 13 service states of PANTHER with RUNNING ⇄ READY and restart from STOPPED. */
export const Service = define<ServiceState>({
  name: "service",
  entityType: "service",
  states: serviceStates,
  initial: "CREATED",
  transitions: merge<ServiceState>(
    {
      CREATED: ["PREPARING"],
      PREPARING: ["PREPARED"],
      PREPARED: ["DEPLOYING"],
      DEPLOYING: ["DEPLOYED"],
      DEPLOYED: ["STARTING"],
      STARTING: ["RUNNING"],
      RUNNING: ["READY"],
      READY: ["RUNNING"],
      STOPPING: ["STOPPED"],
      STOPPED: ["STARTING", "DESTROYING", "DESTROYED"],
      ERROR: ["STOPPING", "DESTROYING", "DESTROYED"],
      DESTROYING: ["DESTROYED"]
    },
    fromEach<ServiceState>(["DEPLOYED", "STARTING", "RUNNING", "READY"], ["STOPPING"]),
    fromEach<ServiceState>(
      ["CREATED", "PREPARING", "PREPARED", "DEPLOYING", "DEPLOYED", "STARTING", "RUNNING", "READY", "STOPPING"],
      ["ERROR", "DESTROYED"]
    )
  ),
  final: ["DESTROYED"]
})

const experimentStates = [
  "CREATED",
  "INITIALIZING",
  "LOADING_PLUGINS",
  "PLUGINS_LOADED",
  "INITIALIZING_TESTS",
  "TESTS_INITIALIZED",
  "RUNNING",
  "COLLECTING_RESULTS",
  "COMPLETED",
  "FAILED",
  "FINISHED_EARLY"
] as const
export type ExperimentState = (typeof experimentStates)[number]

const chain = <S extends string>(states: ReadonlyArray<S>) =>
  Object.fromEntries(states.slice(0, -1).map((s, i) => [s, [states[i + 1]!]])) as unknown as {
    [K in S]?: ReadonlyArray<S>
  }

/** Experiment: a straight line to COMPLETED; FAILED from any non-final state; FINISHED_EARLY from INITIALIZING…RUNNING. */
export const Experiment = define<ExperimentState>({
  name: "experiment",
  entityType: "experiment",
  states: experimentStates,
  initial: "CREATED",
  transitions: merge<ExperimentState>(
    chain<ExperimentState>(experimentStates.slice(0, 9)),
    fromEach<ExperimentState>(experimentStates.slice(0, 8), ["FAILED"]),
    fromEach<ExperimentState>(experimentStates.slice(1, 7), ["FINISHED_EARLY"])
  ),
  final: ["COMPLETED", "FAILED", "FINISHED_EARLY"]
})

const testStates = [
  "CREATED",
  "SETTING_UP",
  "SETTING_UP_SERVICES",
  "SERVICES_SETUP",
  "SETTING_UP_ENVIRONMENT",
  "ENVIRONMENT_SETUP",
  "DEPLOYING",
  "DEPLOYED",
  "EXECUTING",
  "EXECUTING_STEPS",
  "VALIDATING_ASSERTIONS",
  "TEARING_DOWN",
  "COMPLETED",
  "FAILED"
] as const
export type TestState = (typeof testStates)[number]

/** Test: a straight line to COMPLETED; FAILED from any non-final state. */
export const Test = define<TestState>({
  name: "test",
  entityType: "test",
  states: testStates,
  initial: "CREATED",
  transitions: merge<TestState>(
    chain<TestState>(testStates.slice(0, 13)),
    fromEach<TestState>(testStates.slice(0, 12), ["FAILED"])
  ),
  final: ["COMPLETED", "FAILED"]
})

const environmentStates = [
  "CREATED",
  "INITIALIZING",
  "INITIALIZED",
  "SETTING_UP",
  "SETUP",
  "READY",
  "TEARING_DOWN",
  "TORN_DOWN",
  "DESTROYING",
  "DESTROYED",
  "ERROR"
] as const
export type EnvironmentState = (typeof environmentStates)[number]

/**
 * Environment: a straight line to DESTROYED. COMPAT.md §3 gives ERROR's exits but not its entries; any
 * state before TORN_DOWN may fail into ERROR, since setup and teardown are where environments break.
 */
export const Environment = define<EnvironmentState>({
  name: "environment",
  entityType: "environment",
  states: environmentStates,
  initial: "CREATED",
  transitions: merge<EnvironmentState>(
    chain<EnvironmentState>(environmentStates.slice(0, 10)),
    fromEach<EnvironmentState>(environmentStates.slice(0, 7), ["ERROR"]),
    { ERROR: ["TEARING_DOWN", "DESTROYING", "READY"] }
  ),
  final: ["DESTROYED"]
})

export const all = [Service, Experiment, Test, Environment] as const
