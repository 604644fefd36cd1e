// The mutable accumulator behind Collector.fold: one `add` per typed event, one `finish` at the end. Mutable
// on purpose — a log of a million events must fold in one pass without copying the state per event.
import type { TestbedEvent } from "@testbed/events"
import type * as RS from "../ExperimentSummary.ts"
import * as Usage from "./resources.ts"

type E = TestbedEvent.TestbedEvent
type Ev<T extends TestbedEvent.TestbedEventType> = TestbedEvent.EventOf<T>

type StepAcc = RS.StepResult

interface AttemptAcc {
  attempt: number
  status: RS.AttemptStatus | null
  start_time: string | null
  end_time: string | null
  duration_ms: number
  error_message: string | null
  logs_path: string | null
  fast_fail_triggered: boolean
  willRetry: boolean
  /** Where a cluster attempt ran (its first state change's metadata); null in a local run. */
  runner: string | null
  host: string | null
  steps: Map<number, StepAcc>
  assertions: Map<number, RS.AssertionResult>
}

interface TestAcc {
  name: string
  description: string | null
  matrix: RS.MatrixPosition | null
  participants: Array<RS.Participant>
  attempts: Array<AttemptAcc>
  artifacts: Array<RS.ArtifactRef>
  services: Array<string>
  unsupportedBy: Array<string>
  lastState: string | null
}

interface ServiceAcc {
  name: string
  test: string
  type: "iut" | "tester" | null
  implementation: string | null
  role: "server" | "client" | null
  exitCode: number | null
  signal: string | null
  crashed: boolean
  unsupported: boolean
  exited: boolean
  starts: number
  startedAt: string | null
  exitedAt: string | null
  history: Array<RS.StateChange>
  killedBy?: string | undefined
  usage?: Usage.ServiceUsageAcc | undefined
}

export interface State {
  readonly tests: Map<string, TestAcc>
  readonly services: Map<string, ServiceAcc>
  started: Ev<"experiment.started"> | null
  finished: Ev<"experiment.finished"> | null
  readonly history: Array<RS.StateChange>
  firstTimestamp: string | null
  lastTimestamp: string | null
  total: number
  unknown: number
  invalid: number
  readonly unknownTypes: Set<string>
  readonly topologies: Array<RS.Topology>
  readonly run: Usage.RunUsageAcc
  traceId: string | undefined
}

export const empty = (): State => ({
  tests: new Map(),
  services: new Map(),
  started: null,
  finished: null,
  history: [],
  firstTimestamp: null,
  lastTimestamp: null,
  total: 0,
  unknown: 0,
  invalid: 0,
  unknownTypes: new Set(),
  topologies: [],
  run: Usage.emptyRun(),
  traceId: undefined
})

/** Keeps the latest timestamp seen, so a cut-off attempt ends where the log ends. */
export const seen = (state: State, timestamp: string): void => {
  state.total++
  if (state.firstTimestamp === null) state.firstTimestamp = timestamp
  const last = state.lastTimestamp
  if (last === null) {
    if (!Number.isNaN(Date.parse(timestamp))) state.lastTimestamp = timestamp
    return
  }
  // UTC ISO strings of one length order as text: no need to parse the common case.
  if (timestamp.length === last.length && timestamp.endsWith("Z") && last.endsWith("Z")) {
    if (timestamp > last) state.lastTimestamp = timestamp
    return
  }
  const millis = Date.parse(timestamp)
  if (!Number.isNaN(millis) && millis >= Date.parse(last)) state.lastTimestamp = timestamp
}

const test = (state: State, name: string): TestAcc => {
  let acc = state.tests.get(name)
  if (acc === undefined) {
    acc = {
      name,
      description: null,
      matrix: null,
      participants: [],
      attempts: [],
      artifacts: [],
      services: [],
      unsupportedBy: [],
      lastState: null
    }
    state.tests.set(name, acc)
  }
  return acc
}

const newAttempt = (attempt: number, start: string | null): AttemptAcc => ({
  attempt,
  status: null,
  start_time: start,
  end_time: null,
  duration_ms: 0,
  error_message: null,
  logs_path: null,
  fast_fail_triggered: false,
  willRetry: false,
  runner: null,
  host: null,
  steps: new Map(),
  assertions: new Map()
})

/**
 * The attempt numbered `attempt`. A cluster attempt whose runner was lost (`runner_lost`) is re-run under the same
 * number: what follows it belongs to a new entry, so the report shows both runs.
 */
const attemptOf = (acc: TestAcc, attempt: number): AttemptAcc => {
  let found = acc.attempts.findLast((a) => a.attempt === attempt)
  if (found === undefined || found.status === "runner_lost") {
    found = newAttempt(attempt, null)
    acc.attempts.push(found)
  }
  return found
}

const current = (state: State, testName: string): AttemptAcc | undefined => {
  const acc = state.tests.get(testName)
  return acc?.attempts[acc.attempts.length - 1]
}

// A service's entityId is `<test>/<service>`; service names carry no slash, test names might.
const splitServiceId = (entityId: string): { test: string; service: string } => {
  const at = entityId.lastIndexOf("/")
  return at < 0 ? { test: "", service: entityId } : { test: entityId.slice(0, at), service: entityId.slice(at + 1) }
}

const service = (state: State, entityId: string, testName?: string, serviceName?: string): ServiceAcc => {
  let acc = state.services.get(entityId)
  if (acc === undefined) {
    const split = splitServiceId(entityId)
    acc = {
      name: serviceName ?? split.service,
      test: testName ?? split.test,
      type: null,
      implementation: null,
      role: null,
      exitCode: null,
      signal: null,
      crashed: false,
      unsupported: false,
      exited: false,
      starts: 0,
      startedAt: null,
      exitedAt: null,
      history: []
    }
    state.services.set(entityId, acc)
    const owner = test(state, acc.test)
    if (!owner.services.includes(acc.name)) owner.services.push(acc.name)
  }
  return acc
}

const stateChange = (
  data: { readonly from: string; readonly to: string; readonly trigger: string },
  timestamp: string,
  attempt: number | null
): RS.StateChange => ({ from: data.from, to: data.to, trigger: data.trigger, timestamp, attempt })

const experimentEvent = (
  state: State,
  event: Ev<"experiment.started"> | Ev<"experiment.state_changed"> | Ev<"experiment.finished">
): void => {
  if (event.type === "experiment.started") state.started = event
  else if (event.type === "experiment.finished") state.finished = event
  else state.history.push(stateChange(event.data, event.timestamp, null))
}

/**
 * A test was declared. Its matrix name comes from the event when it carries one (`matrixName`, read from the raw
 * payload by the Collector), else from the name experiments gives matrix tests: `<matrix> [<row> server, <column>
 * client]`; else it has none (the run's one unnamed matrix).
 */
const testRegistered = (state: State, event: Ev<"test.registered">, matrixName: string | undefined): void => {
  const acc = test(state, event.entityId)
  const position = event.data.matrix
  acc.description = event.data.description ?? null
  acc.matrix =
    position === undefined
      ? null
      : { row: position.row, column: position.column, name: matrixName ?? matrixNameFromTest(acc.name, position) }
  acc.participants = event.data.participants.map((p) => ({
    service: p.service,
    implementation: p.implementation,
    type: p.type,
    role: p.role ?? null,
    version: p.version ?? null
  }))
}

const matrixNameFromTest = (name: string, position: { readonly row: string; readonly column: string }) => {
  const suffix = ` [${position.row} server, ${position.column} client]`
  return name.endsWith(suffix) && name.length > suffix.length ? name.slice(0, -suffix.length) : null
}

const testStarted = (state: State, event: Ev<"test.started">): void => {
  const acc = test(state, event.entityId)
  const existing = acc.attempts.findLast((a) => a.attempt === event.data.attempt)
  if (existing && existing.status !== "runner_lost") existing.start_time ??= event.timestamp
  else acc.attempts.push(newAttempt(event.data.attempt, event.timestamp))
}

const testFinished = (state: State, event: Ev<"test.finished">): void => {
  const attempt = attemptOf(test(state, event.entityId), event.data.attempt)
  attempt.status = event.data.status
  attempt.end_time = event.timestamp
  attempt.duration_ms = event.data.durationMs
  attempt.error_message = event.data.errorMessage ?? null
  attempt.logs_path = event.data.logsPath ?? null
  attempt.fast_fail_triggered = event.data.fastFailTriggered ?? false
  attempt.willRetry = event.data.willRetry ?? false
}

const testArtifact = (state: State, event: Ev<"test.artifact">): void => {
  const acc = test(state, event.entityId)
  acc.artifacts.push({
    name: event.data.name,
    kind: event.data.kind,
    path: event.data.path,
    service: event.data.service ?? null,
    description: event.data.description ?? null,
    attempt: acc.attempts[acc.attempts.length - 1]?.attempt ?? null
  })
}

const serviceStarted = (state: State, event: Ev<"service.started">): void => {
  const acc = service(state, event.entityId, event.data.test, event.data.service)
  acc.starts++
  acc.type = event.data.type
  acc.implementation = event.data.implementation
  acc.role = event.data.role ?? null
  acc.startedAt ??= event.timestamp
}

const serviceExited = (state: State, event: Ev<"service.exited">): void => {
  const acc = service(state, event.entityId, event.data.test, event.data.service)
  acc.exited = true
  acc.exitCode = event.data.exitCode
  acc.signal = event.data.signal
  acc.crashed = event.data.crashed
  acc.exitedAt = event.timestamp
  acc.killedBy = event.data.killedBy
  if (event.data.unsupported === true) {
    acc.unsupported = true
    const owner = test(state, acc.test)
    if (!owner.unsupportedBy.includes(acc.name)) owner.unsupportedBy.push(acc.name)
  }
}

const stepStarted = (state: State, event: Ev<"step.started">): void => {
  current(state, event.data.test)?.steps.set(event.data.index, {
    index: event.data.index,
    kind: event.data.kind,
    description: event.data.description ?? null,
    status: "running",
    duration_ms: null,
    message: null,
    logs: []
  })
}

const stepFinished = (state: State, event: Ev<"step.finished">): void => {
  const attempt = current(state, event.data.test)
  if (attempt === undefined) return
  const step = attempt.steps.get(event.data.index)
  attempt.steps.set(event.data.index, {
    index: event.data.index,
    kind: event.data.kind,
    description: step?.description ?? null,
    status: event.data.status,
    duration_ms: event.data.durationMs,
    message: event.data.message ?? null,
    logs: []
  })
}

const assertionChecked = (state: State, event: Ev<"assertion.checked">): void => {
  current(state, event.data.test)?.assertions.set(event.data.index, {
    index: event.data.index,
    kind: event.data.kind,
    passed: event.data.passed,
    message: event.data.message ?? null,
    logs: []
  })
}

/** Folds one typed event into the state; `matrixName` is the matrix a `test.registered` names, when it does. */
export const add = (state: State, event: E, matrixName?: string): void => {
  switch (event.type) {
    case "experiment.started":
    case "experiment.state_changed":
    case "experiment.finished":
      experimentEvent(state, event)
      return
    case "test.registered":
      testRegistered(state, event, matrixName)
      return
    case "test.started":
      testStarted(state, event)
      return
    case "test.state_changed": {
      const acc = test(state, event.entityId)
      acc.lastState = event.data.to
      // A cluster attempt's first state change names the runner and host it runs on.
      const { attempt, host, runner } = event.data.metadata
      if (typeof attempt === "number" && typeof host === "string") {
        const entry = attemptOf(acc, attempt)
        entry.host = host
        entry.runner = typeof runner === "string" ? runner : null
      }
      return
    }
    case "test.finished":
      testFinished(state, event)
      return
    case "test.artifact":
      testArtifact(state, event)
      return
    case "service.started":
      serviceStarted(state, event)
      return
    case "service.state_changed": {
      const acc = service(state, event.entityId)
      acc.history.push(stateChange(event.data, event.timestamp, current(state, acc.test)?.attempt ?? null))
      return
    }
    case "service.exited":
      serviceExited(state, event)
      return
    case "step.started":
      stepStarted(state, event)
      return
    case "step.finished":
      stepFinished(state, event)
      return
    case "assertion.checked":
      assertionChecked(state, event)
      return
    case "service.resources": {
      const acc = service(state, event.entityId, event.data.test, event.data.service)
      acc.usage = Usage.addSample(acc.usage, event.data, event.timestamp)
      return
    }
    case "experiment.traced":
      state.traceId = event.data.traceId
      return
    case "experiment.resources":
      Usage.addRun(state.run, event.data)
      return
    case "stage.graph":
      state.topologies.push({
        name: event.data.instance === undefined ? event.entityId : `${event.entityId} (${event.data.instance})`,
        svg: event.data.svg
      })
      return
    default:
      // Commands, environments and plugins are in the log for other observers; the summary does not need them.
      return
  }
}

export type { AttemptAcc, ServiceAcc, TestAcc }
