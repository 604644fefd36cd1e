/**
 * An experiment file checked against the plugins and expanded into the tests to run: matrices become one test
 * per server × client, defaults are filled in, durations parsed, references (targets, steps, services in
 * assertions) resolved. Every problem is collected with its YAML path, so `--dry-run` reports them all at once.
 */
import { TimeSpan } from "@testbed/events"
import { type Problems, ServiceCommand, ServicePlugin } from "@testbed/plugins"
import { Duration, Result } from "effect"
import type {
  Assertion,
  Execution as ExecutionConfig,
  ExperimentConfig,
  Hook,
  MatrixEntry,
  ServiceConfig,
  Step,
  TestConfig
} from "./ExperimentConfig.ts"
import { displayProblem, fileNameProblem } from "./internal/names.ts"
import * as Hooks from "./internal/hooks.ts"
import * as ObservePlan from "./internal/observePlan.ts"
import * as TemplateCheck from "./internal/templateCheck.ts"
import * as Pattern from "./Pattern.ts"

/** How a service says it is ready, with its pattern compiled and its deadline decided. */
export type PlannedReadiness =
  | { readonly kind: "none" }
  | { readonly kind: "port"; readonly timeout: Duration.Duration }
  | { readonly kind: "log"; readonly pattern: Pattern.Pattern; readonly timeout: Duration.Duration }
  | {
      readonly kind: "command"
      readonly command: ServicePlugin.CommandTemplate
      readonly timeout: Duration.Duration
    }

/** An assertion as planned: `output_matches` carries its compiled pattern. */
export type PlannedAssertion =
  | Exclude<Assertion, { readonly type: "output_matches" }>
  | (Extract<Assertion, { readonly type: "output_matches" }> & { readonly matcher: Pattern.Pattern })

export interface ServicePlan {
  /** The key under `services`: how steps, assertions and `target` refer to it. */
  readonly key: string
  readonly name: string
  readonly plugin: ServicePlugin.ServicePlugin
  readonly version: string
  readonly type: "iut" | "tester"
  readonly role: ServicePlugin.Role
  readonly spec: ServicePlugin.RoleSpec
  readonly lifetime: "service" | "task"
  readonly readiness: PlannedReadiness
  readonly target: string | undefined
  readonly fixedPort: number | undefined
  /** The service's lifecycle commands besides its own (`run` is its command already); see internal/lifecycle.ts. */
  readonly hooks?: Partial<Record<"prepare" | "pre_run" | "post_run", Hook>> | undefined
  readonly parameters: Readonly<Record<string, ServicePlugin.ParameterValue>>
  readonly timeout: Duration.Duration | undefined
  /** Tools wrapped around its command and limits it runs under. */
  readonly execution: ExecutionConfig | undefined
}

export interface TestPlan {
  readonly name: string
  /** File-system-safe, unique name of the test's output directory. */
  readonly slug: string
  readonly description: string | undefined
  readonly environment: string
  /** Servers first, in file order, then the others: the order services start in. */
  readonly services: ReadonlyArray<ServicePlan>
  readonly steps: ReadonlyArray<Step>
  readonly assertions: ReadonlyArray<PlannedAssertion>
  readonly timeout: Duration.Duration
  readonly retries: number
  /** Capture each service's traffic with tcpdump (localhost only). */
  readonly capture: boolean
  /** How often each service's resources are sampled; undefined: not sampled. */
  readonly metricsInterval: Duration.Duration | undefined
  /** Where the test sits in an interop matrix; `name` is the matrix's, so reports draw one grid per matrix. */
  readonly matrix: { readonly row: string; readonly column: string; readonly name?: string } | undefined
}

export interface ExperimentPlan {
  readonly name: string
  readonly description: string | undefined
  readonly tests: ReadonlyArray<TestPlan>
  readonly concurrency: number
  readonly timeout: Duration.Duration | undefined
  readonly fastFail: boolean
  /** PANTHER's `fast_fail.test_level`: a test stops checking assertions at the first that fails. */
  readonly testLevelFastFail: boolean
  /** Some service needs a throwaway TLS certificate. */
  readonly needsCertificate: boolean
}

export interface Overrides {
  readonly concurrency?: number | undefined
  readonly retries?: number | undefined
  /** Keep only tests whose name contains this text. */
  readonly filter?: string | undefined
  /** Sample every service's resources this often (`--metrics-interval`), whatever the file says. */
  readonly metricsInterval?: Duration.Duration | undefined
  /** Where the config's tests and matrices were in the file, when broken ones were left out. */
  readonly indices?: { readonly tests: ReadonlyArray<number>; readonly matrices: ReadonlyArray<number> } | undefined
}

/** The plugins a plan is checked against (the registry's lookups). */
export interface Plugins {
  readonly findService: (name: string) => ServicePlugin.ServicePlugin | undefined
  readonly findEnvironment: (name: string) => unknown
  readonly serviceNames: ReadonlyArray<string>
  readonly environmentNames: ReadonlyArray<string>
}

export type PlanResult =
  | { readonly ok: true; readonly plan: ExperimentPlan }
  | { readonly ok: false; readonly problems: ReadonlyArray<Problems.Problem> }

export const slugify = (name: string): string =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^-+|-+$/g, "") || "test"

const defaultTestTimeout = Duration.minutes(2)
const defaultReadinessTimeout = Duration.seconds(10)

const environmentName = (value: string | { readonly type: string } | undefined): string | undefined =>
  value === undefined ? undefined : typeof value === "string" ? value : value.type

/**
 * What planning collects as it goes: the problems found (in the order they are met, which is the order users
 * see), and the templates to check at the end, once it is known whether the run makes a certificate.
 */
interface Collector {
  readonly problems: Array<Problems.Problem>
  readonly templates: Array<TemplateCheck.Pending>
}

/** The experiment-wide settings every test is planned with. */
interface Context {
  readonly config: ExperimentConfig
  readonly plugins: Plugins
  readonly overrides: Overrides
  readonly testTimeout: Duration.Duration
  readonly defaultEnvironment: string
  readonly defaultRetries: number
}

/** A service of a test as written: its YAML path, its key, its config. */
type ServiceEntry = readonly [string, string, ServiceConfig]

const problem = (collector: Collector, path: string, message: string): void => {
  collector.problems.push({ path, message })
}

// The file's durations are decoded already (TimeSpan); a deadline of zero would end what it bounds before it starts.
const deadline = (
  collector: Collector,
  path: string,
  duration: Duration.Duration | undefined
): Duration.Duration | undefined => {
  if (duration !== undefined && !Duration.isGreaterThan(duration, Duration.zero)) {
    problem(collector, path, `a timeout must be longer than zero, got ${TimeSpan.format(duration)}`)
    return undefined
  }
  return duration
}

// A plugin's readiness timeout is text in the plugin's own definition: read the same way as the file's.
const pluginDeadline = (
  collector: Collector,
  path: string,
  input: string | undefined
): Duration.Duration | undefined => {
  if (input === undefined) return undefined
  const parsed = TimeSpan.parse(input)
  if (Result.isFailure(parsed)) problem(collector, path, parsed.failure)
  return Result.isSuccess(parsed) ? deadline(collector, path, parsed.success) : undefined
}

const fileName = (collector: Collector, path: string, name: string | undefined): void => {
  const reason = name === undefined ? undefined : fileNameProblem(name)
  if (reason !== undefined) problem(collector, path, `not usable as a name: ${reason}`)
}

const displayName = (collector: Collector, path: string, name: string | undefined): void => {
  const reason = name === undefined ? undefined : displayProblem(name)
  if (reason !== undefined) problem(collector, path, `not usable as a name: ${reason}`)
}

const compiled = (collector: Collector, path: string, source: string): Pattern.Pattern | undefined => {
  const result = Pattern.compile(source)
  if (Result.isFailure(result)) problem(collector, path, result.failure)
  return Result.isSuccess(result) ? result.success : undefined
}

const checkOverrides = (collector: Collector, config: ExperimentConfig, overrides: Overrides): void => {
  if (overrides.concurrency !== undefined && !(Number.isInteger(overrides.concurrency) && overrides.concurrency >= 1)) {
    problem(
      collector,
      "concurrency",
      `--concurrency must be a whole number of at least 1, got ${overrides.concurrency}`
    )
  }
  if (overrides.retries !== undefined && !(Number.isInteger(overrides.retries) && overrides.retries >= 0)) {
    problem(collector, "retries", `--retries must be a whole number of at least 0, got ${overrides.retries}`)
  }
  const intervalProblem = ObservePlan.intervalProblem(overrides.metricsInterval ?? config.metrics?.interval)
  if (intervalProblem !== undefined) problem(collector, "metrics.interval", intervalProblem)
}

/** How the service says it is ready; a log pattern that did not compile is a problem already (never run). */
const planReadiness = (
  collector: Collector,
  path: string,
  service: ServiceConfig,
  spec: ServicePlugin.RoleSpec,
  ownTimeout: Duration.Duration | undefined
): PlannedReadiness => {
  const given = service.readiness
  // `kind` replaces the plugin's readiness; `timeout` alone changes only its deadline (its kind and pattern stay).
  const replaced = given !== undefined && "kind" in given ? given : undefined
  const readiness = replaced ?? ServicePlugin.readinessOf(service.role, spec)
  const where = replaced === undefined ? `${path}.implementation` : `${path}.readiness`
  const deadlineOnly = given !== undefined && !("kind" in given) ? given.timeout : undefined
  if (deadlineOnly !== undefined && readiness.kind === "none") {
    problem(
      collector,
      `${path}.readiness.timeout`,
      `${service.implementation} as a ${service.role} waits for no readiness (kind none): give a kind to wait for`
    )
  }
  const timeout =
    ownTimeout ??
    (readiness.kind === "none"
      ? undefined
      : deadlineOnly !== undefined
        ? pluginDeadline(collector, `${path}.readiness.timeout`, deadlineOnly)
        : pluginDeadline(collector, `${where}.timeout`, readiness.timeout)) ??
    defaultReadinessTimeout
  const matcher = readiness.kind === "log" ? compiled(collector, `${where}.pattern`, readiness.pattern) : undefined
  if (readiness.kind === "none") return { kind: "none" }
  if (readiness.kind === "log")
    return matcher === undefined ? { kind: "none" } : { kind: "log", pattern: matcher, timeout }
  if (readiness.kind === "port") return { kind: "port", timeout }
  return { kind: "command", command: readiness.command, timeout }
}

const planService = (
  collector: Collector,
  plugins: Plugins,
  path: string,
  key: string,
  service: ServiceConfig
): ServicePlan | undefined => {
  const plugin = plugins.findService(service.implementation)
  if (plugin === undefined) {
    problem(
      collector,
      `${path}.implementation`,
      `unknown implementation "${service.implementation}" (known: ${plugins.serviceNames.join(", ")})`
    )
    return undefined
  }
  const spec = plugin.roles[service.role]
  if (spec === undefined) {
    problem(
      collector,
      `${path}.role`,
      `${plugin.name} cannot be a ${service.role} (it has: ${Object.keys(plugin.roles).join(", ")})`
    )
    return undefined
  }
  const version = service.version ?? plugin.versions[0] ?? "default"
  if (plugin.versions.length > 0 && !plugin.versions.includes(version) && !plugin.versions.includes("any")) {
    problem(
      collector,
      `${path}.version`,
      `${plugin.name} has no version "${version}" (it has: ${plugin.versions.join(", ")})`
    )
  }
  const given = service.parameters ?? {}
  for (const [parameter, reason] of ServiceCommand.checkParameters(spec.parameters ?? {}, given)) {
    problem(collector, `${path}.parameters.${parameter}`, reason)
  }
  const ownTimeout = deadline(collector, `${path}.timeout`, service.timeout)
  const readiness = planReadiness(collector, path, service, spec, ownTimeout)
  if (service.role === "client" && service.port !== undefined)
    problem(collector, `${path}.port`, "only a server listens on a port")
  displayName(collector, `${path}.name`, service.name)
  for (const [hook, reason] of Hooks.problems(service)) problem(collector, `${path}.${hook}`, reason)
  return {
    key,
    name: service.name ?? key,
    plugin,
    version,
    type: service.type ?? plugin.type,
    role: service.role,
    spec: Hooks.withRun(spec, service.run),
    lifetime: ServicePlugin.lifetimeOf(service.role, spec),
    readiness,
    target: service.target,
    fixedPort: service.port,
    hooks: Hooks.hooksOf(service),
    parameters: ServiceCommand.resolveParameters(spec.parameters ?? {}, given),
    timeout: ownTimeout ?? deadline(collector, `${path}.run.timeout`, service.run?.timeout),
    execution: service.execution
  }
}

/** The test's services planned, their templates queued; returns each planned service's known variables. */
const planServices = (
  collector: Collector,
  plugins: Plugins,
  services: ReadonlyArray<ServiceEntry>,
  testKnown: ReadonlySet<string>
): { readonly planned: ReadonlyArray<ServicePlan>; readonly serviceKnown: Map<string, ReadonlySet<string>> } => {
  const planned = services.flatMap(([servicePath, key, config]) => {
    fileName(collector, servicePath, key)
    const plannedService = planService(collector, plugins, servicePath, key, config)
    return plannedService === undefined ? [] : [plannedService]
  })
  const serviceKnown = new Map<string, ReadonlySet<string>>()
  for (const service of planned) {
    const servicePath = services.find(([, key]) => key === service.key)![0]
    const checked = TemplateCheck.ofService(servicePath, service, testKnown)
    serviceKnown.set(service.key, checked.known)
    collector.templates.push(...checked.pending)
  }
  for (const [servicePath, , config] of services) {
    if (config.target === undefined) continue
    const target = services.find(([, key]) => key === config.target)
    const keys = services.map(([, key]) => key)
    if (target === undefined)
      problem(
        collector,
        `${servicePath}.target`,
        `no service "${config.target}" in this test (has: ${keys.join(", ")})`
      )
    else if (target[2].role !== "server")
      problem(collector, `${servicePath}.target`, `"${config.target}" is not a server`)
  }
  return { planned, serviceKnown }
}

/** What the steps of one test are checked against, and what they tell the assertions. */
interface StepScope {
  readonly services: ReadonlyArray<ServiceEntry>
  readonly testKnown: ReadonlySet<string>
  readonly serviceKnown: ReadonlyMap<string, ReadonlySet<string>>
  readonly stepNames: Set<string>
  readonly replaySteps: Set<string>
}

type ReplayStep = Extract<Step, { readonly replay: unknown }>["replay"]
type FleetStep = Extract<Step, { readonly fleet: unknown }>["fleet"]
type RunStep = Extract<Step, { readonly run: unknown }>["run"]

const planReplayStep = (
  collector: Collector,
  scope: StepScope,
  stepPath: string,
  index: number,
  replay: ReplayStep
): void => {
  const name = replay.name ?? `step${index}`
  scope.stepNames.add(name)
  scope.replaySteps.add(name)
  if (replay.service !== undefined) {
    const target = scope.services.find(([, key]) => key === replay.service)
    if (target === undefined)
      problem(collector, `${stepPath}.replay.service`, `no service "${replay.service}" in this test`)
    else if (target[2].implementation !== "replay")
      problem(collector, `${stepPath}.replay.service`, `"${replay.service}" is not a replay service`)
    if (replay.script !== undefined || replay.command !== undefined)
      problem(collector, `${stepPath}.replay`, "give service, or script and command, not both")
  } else {
    if (replay.script === undefined)
      problem(collector, `${stepPath}.replay.script`, "give the recorded script (or service)")
    if (replay.command === undefined || replay.command.length === 0)
      problem(collector, `${stepPath}.replay.command`, "give the client command run against the replay")
    if (replay.script !== undefined)
      collector.templates.push({ path: `${stepPath}.replay.script`, source: replay.script, known: scope.testKnown })
    const clientKnown = new Set([...scope.testKnown, "replay_host", "replay_port"])
    for (const [at, source] of (replay.command ?? []).entries())
      collector.templates.push({ path: `${stepPath}.replay.command[${at}]`, source, known: clientKnown })
    for (const [name, source] of Object.entries(replay.env ?? {}))
      collector.templates.push({ path: `${stepPath}.replay.env.${name}`, source, known: clientKnown })
  }
  deadline(collector, `${stepPath}.replay.timeout`, replay.timeout)
  deadline(collector, `${stepPath}.replay.step_timeout`, replay.step_timeout)
}

const planFleetStep = (
  collector: Collector,
  scope: StepScope,
  stepPath: string,
  index: number,
  fleet: FleetStep
): void => {
  scope.stepNames.add(fleet.name ?? `step${index}`)
  if ((fleet.agents === undefined) === (fleet.expect === undefined))
    problem(
      collector,
      `${stepPath}.fleet`,
      "give exactly one of agents (started by the step) or expect (external agents)"
    )
  if (fleet.expect !== undefined && fleet.secret_file === undefined)
    problem(collector, `${stepPath}.fleet.secret_file`, "external agents (expect) need the shared secret file")
  if (fleet.pipeline.length === 0) problem(collector, `${stepPath}.fleet.pipeline`, "empty pipeline")
  fleet.pipeline.forEach((command, at) => {
    if (command.trim() === "") problem(collector, `${stepPath}.fleet.pipeline[${at}]`, "empty command")
  })
  if (fleet.broker !== undefined && !/^(mqtts?|wss?|tcp|ssl):\/\/[^/]/.test(fleet.broker))
    problem(collector, `${stepPath}.fleet.broker`, `not an MQTT URL: ${fleet.broker}`)
  deadline(collector, `${stepPath}.fleet.step_timeout`, fleet.step_timeout)
  deadline(collector, `${stepPath}.fleet.registration_timeout`, fleet.registration_timeout)
}

const planRunStep = (collector: Collector, scope: StepScope, stepPath: string, index: number, run: RunStep): void => {
  scope.stepNames.add(run.name ?? `step${index}`)
  if ((run.command === undefined) === (run.shell === undefined))
    problem(collector, `${stepPath}.run`, "give exactly one of command or shell")
  if (run.command !== undefined && run.command.length === 0)
    problem(collector, `${stepPath}.run.command`, "empty command")
  if (run.service !== undefined && !scope.services.some(([, key]) => key === run.service))
    problem(collector, `${stepPath}.run.service`, `no service "${run.service}" in this test`)
  deadline(collector, `${stepPath}.run.timeout`, run.timeout)
  const known = (run.service === undefined ? undefined : scope.serviceKnown.get(run.service)) ?? scope.testKnown
  for (const [at, source] of (run.command ?? []).entries())
    collector.templates.push({ path: `${stepPath}.run.command[${at}]`, source, known })
  if (run.shell !== undefined) collector.templates.push({ path: `${stepPath}.run.shell`, source: run.shell, known })
  for (const [name, source] of Object.entries(run.env ?? {}))
    collector.templates.push({ path: `${stepPath}.run.env.${name}`, source, known })
}

/** The test's steps as a list (a lone `steps: {wait}` is one step), each checked; names go into the scope. */
const planSteps = (
  collector: Collector,
  scope: StepScope,
  path: string,
  test: Omit<TestConfig, "services">
): ReadonlyArray<Step> => {
  const steps: ReadonlyArray<Step> = Array.isArray(test.steps)
    ? (test.steps as ReadonlyArray<Step>)
    : test.steps !== undefined && "wait" in test.steps && test.steps.wait !== undefined
      ? [{ wait: test.steps.wait }]
      : []
  steps.forEach((step, index) => {
    const stepPath = `${path}.steps[${index}]`
    if ("wait" in step) return
    if ("replay" in step) {
      fileName(collector, `${stepPath}.replay.name`, step.replay.name)
      planReplayStep(collector, scope, stepPath, index, step.replay)
    } else if ("fleet" in step) {
      fileName(collector, `${stepPath}.fleet.name`, step.fleet.name)
      planFleetStep(collector, scope, stepPath, index, step.fleet)
    } else {
      fileName(collector, `${stepPath}.run.name`, step.run.name)
      planRunStep(collector, scope, stepPath, index, step.run)
    }
  })
  return steps
}

/** One assertion checked against the test's services and steps; `output_matches` gets its compiled pattern. */
const planAssertion = (
  collector: Collector,
  scope: StepScope,
  assertionPath: string,
  assertion: Assertion
): PlannedAssertion | undefined => {
  let planned: PlannedAssertion | undefined = assertion as PlannedAssertion
  if (assertion.type === "output_matches") {
    const matcher = compiled(collector, `${assertionPath}.pattern`, assertion.pattern)
    planned = matcher === undefined ? undefined : { ...assertion, matcher }
  }
  if (assertion.type === "file_exists") {
    collector.templates.push({ path: `${assertionPath}.path`, source: assertion.path, known: scope.testKnown })
    return planned
  }
  const serviceOf = (key: string | undefined) => scope.services.find(([, serviceKey]) => serviceKey === key)
  if ("step" in assertion && assertion.step !== undefined) {
    if (!scope.stepNames.has(assertion.step))
      problem(collector, `${assertionPath}.step`, `no step named "${assertion.step}"`)
    if (assertion.service !== undefined) problem(collector, assertionPath, "give service or step, not both")
  } else if (assertion.service === undefined) {
    problem(collector, assertionPath, "give the service (or step) it is about")
  } else if (serviceOf(assertion.service) === undefined) {
    problem(collector, `${assertionPath}.service`, `no service "${assertion.service}" in this test`)
  }
  if (assertion.type === "replay_passed") {
    const { step } = assertion
    if (step !== undefined && scope.stepNames.has(step) && !scope.replaySteps.has(step))
      problem(collector, `${assertionPath}.step`, `"${step}" is not a replay step`)
    const target = serviceOf(assertion.service)
    if (target !== undefined && target[2].implementation !== "replay")
      problem(collector, `${assertionPath}.service`, `"${assertion.service}" is not a replay service`)
  }
  for (const [suffix, message] of ObservePlan.assertionProblems(assertion, scope.services))
    problem(collector, `${assertionPath}${suffix}`, message)
  if (assertion.type === "service_responsive") {
    deadline(collector, `${assertionPath}.timeout`, assertion.timeout)
    const target = serviceOf(assertion.service)
    if (target !== undefined && target[2].role !== "server")
      problem(collector, `${assertionPath}.service`, "only a server has a port to probe")
  }
  return planned
}

const planEnvironment = (
  collector: Collector,
  context: Context,
  path: string,
  test: Omit<TestConfig, "services">
): string => {
  const environment = environmentName(test.environment ?? test.network_environment) ?? context.defaultEnvironment
  if (context.plugins.findEnvironment(environment) === undefined) {
    const field =
      test.environment === undefined && test.network_environment !== undefined ? "network_environment" : "environment"
    problem(
      collector,
      `${path}.${field}`,
      `unknown environment "${environment}" (known: ${context.plugins.environmentNames.join(", ")})`
    )
  }
  return environment
}

/** One test (a test of the file, or one cell of a matrix) planned; `name` and `slug` are given by the caller. */
const planTest = (
  collector: Collector,
  context: Context,
  path: string,
  test: Omit<TestConfig, "services">,
  services: ReadonlyArray<ServiceEntry>,
  matrix: TestPlan["matrix"]
): TestPlan => {
  const testKnown = new Set([
    ...TemplateCheck.attemptVariables,
    ...services.flatMap(([, key, config]) => TemplateCheck.perService(key, config.role === "server"))
  ])
  const { planned, serviceKnown } = planServices(collector, context.plugins, services, testKnown)
  const hasReplayStep = Array.isArray(test.steps) && test.steps.some((step) => "replay" in step || "fleet" in step)
  if (services.length === 0 && !hasReplayStep)
    problem(collector, `${path}.services`, "a test needs at least one service")
  const scope: StepScope = { services, testKnown, serviceKnown, stepNames: new Set(), replaySteps: new Set() }
  const steps = planSteps(collector, scope, path, test)
  const assertions = test.assertions ?? []
  const plannedAssertions = assertions.flatMap((assertion, index) => {
    const planned = planAssertion(collector, scope, `${path}.assertions[${index}]`, assertion)
    return planned === undefined ? [] : [planned]
  })
  const environment = planEnvironment(collector, context, path, test)
  const { config, overrides } = context
  return {
    name: "",
    slug: "",
    description: test.description,
    environment,
    services: [...planned.filter((s) => s.role === "server"), ...planned.filter((s) => s.role !== "server")],
    steps,
    assertions: plannedAssertions,
    timeout: deadline(collector, `${path}.timeout`, test.timeout) ?? context.testTimeout,
    retries: overrides.retries ?? test.retries ?? context.defaultRetries,
    capture: test.capture ?? config.capture ?? false,
    metricsInterval: ObservePlan.intervalOf(overrides.metricsInterval, config.metrics?.interval, assertions),
    matrix
  }
}

const planFileTests = (collector: Collector, context: Context): ReadonlyArray<TestPlan> =>
  (context.config.tests ?? []).map((test, index) => {
    const path = `tests[${context.overrides.indices?.tests[index] ?? index}]`
    displayName(collector, `${path}.name`, test.name)
    const services = Object.entries(test.services ?? {}).map(
      ([key, service]) => [`${path}.services.${key}`, key, service] as const
    )
    return { ...planTest(collector, context, path, test, services, undefined), name: test.name }
  })

const matrixEntry = (value: MatrixEntry) => (typeof value === "string" ? { implementation: value } : value)

type MatrixConfig = NonNullable<ExperimentConfig["matrices"]>[number]

/** One test per server × client of a matrix, row by row. */
const planMatrix = (
  collector: Collector,
  context: Context,
  path: string,
  matrix: MatrixConfig
): ReadonlyArray<TestPlan> => {
  displayName(collector, `${path}.name`, matrix.name)
  if (matrix.servers.length === 0) problem(collector, `${path}.servers`, "a matrix needs at least one server")
  if (matrix.clients.length === 0) problem(collector, `${path}.clients`, "a matrix needs at least one client")
  // The matrix's own parameters (an interop test case: `testcase: alpn`) go to both roles; an entry's win.
  const withShared = <E extends { readonly parameters?: ServiceConfig["parameters"] }>(value: E) =>
    matrix.parameters === undefined ? value : { ...value, parameters: { ...matrix.parameters, ...value.parameters } }
  return matrix.servers.flatMap((serverEntry, row) =>
    matrix.clients.map((clientEntry, column) => {
      const server = withShared(matrixEntry(serverEntry))
      const client = withShared(matrixEntry(clientEntry))
      const services = [
        [`${path}.servers[${row}]`, "server", { ...server, role: "server" as const }] as const,
        [`${path}.clients[${column}]`, "client", { ...client, role: "client" as const, target: "server" }] as const
      ]
      const cell = { row: server.implementation, column: client.implementation, name: matrix.name }
      return {
        ...planTest(collector, context, path, matrix, services, cell),
        name: `${matrix.name} [${server.implementation} server, ${client.implementation} client]`
      }
    })
  )
}

/** Each test gets a unique slug (its output directory); a name given twice is a problem. */
const nameTests = (collector: Collector, tests: ReadonlyArray<TestPlan>): ReadonlyArray<TestPlan> => {
  const seen = new Map<string, number>()
  const slugs = new Set<string>()
  return tests.map((test, index) => {
    const count = (seen.get(test.name) ?? 0) + 1
    seen.set(test.name, count)
    if (count === 2) problem(collector, `tests[${index}].name`, `two tests are named "${test.name}"`)
    let slug = slugify(test.name)
    for (let n = 2; slugs.has(slug); n++) slug = `${slugify(test.name)}-${n}`
    slugs.add(slug)
    return { ...test, slug }
  })
}

const checkTemplates = (collector: Collector, needsCertificate: boolean): void => {
  const extra = needsCertificate ? TemplateCheck.certificateVariables : []
  for (const pending of collector.templates) {
    const reason = TemplateCheck.check(pending, extra)
    if (reason !== undefined)
      problem(collector, pending.path, pending.what === undefined ? reason : `${pending.what}: ${reason}`)
  }
}

export const make = (
  config: ExperimentConfig,
  name: string,
  plugins: Plugins,
  overrides: Overrides = {}
): PlanResult => {
  const collector: Collector = { problems: [], templates: [] }
  checkOverrides(collector, config, overrides)
  const experimentTimeout = deadline(collector, "timeout", config.timeout)
  const context: Context = {
    config,
    plugins,
    overrides,
    testTimeout: deadline(collector, "test_timeout", config.test_timeout) ?? defaultTestTimeout,
    defaultEnvironment: environmentName(config.environment) ?? "localhost",
    defaultRetries: overrides.retries ?? config.retries ?? 0
  }
  const tests = [
    ...planFileTests(collector, context),
    ...(config.matrices ?? []).flatMap((matrix, index) =>
      planMatrix(collector, context, `matrices[${overrides.indices?.matrices[index] ?? index}]`, matrix)
    )
  ]
  const named = nameTests(collector, tests)
  const { filter } = overrides
  const selected = filter === undefined ? named : named.filter((test) => test.name.includes(filter))
  const needsCertificate = selected.some((test) =>
    test.services.some((service) => service.plugin.requires?.includes("certificate") ?? false)
  )
  checkTemplates(collector, needsCertificate)
  const { problems } = collector
  if (named.length === 0 && problems.length === 0)
    problem(collector, "tests", "the experiment has no tests (give tests or matrices)")
  else if (selected.length === 0 && filter !== undefined)
    problem(collector, "tests", `no test name contains "${filter}"`)

  if (problems.length > 0) return { ok: false, problems }
  return {
    ok: true,
    plan: {
      name: config.name ?? name,
      description: config.description,
      tests: selected,
      concurrency: overrides.concurrency ?? config.concurrency ?? 1,
      timeout: experimentTimeout,
      fastFail: config.fast_fail?.enabled ?? false,
      testLevelFastFail: config.fast_fail?.test_level ?? false,
      needsCertificate
    }
  }
}
