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
import * as Hooks from "./internal/hooks.ts"
import { displayProblem, fileNameProblem } from "./internal/names.ts"
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

export const make = (
  config: ExperimentConfig,
  name: string,
  plugins: Plugins,
  overrides: Overrides = {}
): PlanResult => {
  const problems: Array<Problems.Problem> = []
  const problem = (path: string, message: string) => problems.push({ path, message })
  // The file's durations are decoded already (TimeSpan); a deadline of zero would end what it bounds before it starts.
  const deadline = (path: string, duration: Duration.Duration | undefined): Duration.Duration | undefined => {
    if (duration !== undefined && !Duration.isGreaterThan(duration, Duration.zero)) {
      problem(path, `a timeout must be longer than zero, got ${TimeSpan.format(duration)}`)
      return undefined
    }
    return duration
  }
  // A plugin's readiness timeout is text in the plugin's own definition: read the same way as the file's.
  const pluginDeadline = (path: string, input: string | undefined): Duration.Duration | undefined => {
    if (input === undefined) return undefined
    const parsed = TimeSpan.parse(input)
    if (Result.isFailure(parsed)) problem(path, parsed.failure)
    return Result.isSuccess(parsed) ? deadline(path, parsed.success) : undefined
  }
  const fileName = (path: string, name: string | undefined) => {
    const reason = name === undefined ? undefined : fileNameProblem(name)
    if (reason !== undefined) problem(path, `not usable as a name: ${reason}`)
  }
  const displayName = (path: string, name: string | undefined) => {
    const reason = name === undefined ? undefined : displayProblem(name)
    if (reason !== undefined) problem(path, `not usable as a name: ${reason}`)
  }
  const compiled = (path: string, source: string): Pattern.Pattern | undefined => {
    const result = Pattern.compile(source)
    if (Result.isFailure(result)) problem(path, result.failure)
    return Result.isSuccess(result) ? result.success : undefined
  }
  // Templates are checked at the end, once it is known whether the run makes a certificate.
  const templates: Array<TemplateCheck.Pending> = []

  if (overrides.concurrency !== undefined && !(Number.isInteger(overrides.concurrency) && overrides.concurrency >= 1)) {
    problem("concurrency", `--concurrency must be a whole number of at least 1, got ${overrides.concurrency}`)
  }
  if (overrides.retries !== undefined && !(Number.isInteger(overrides.retries) && overrides.retries >= 0)) {
    problem("retries", `--retries must be a whole number of at least 0, got ${overrides.retries}`)
  }
  const intervalProblem = ObservePlan.intervalProblem(overrides.metricsInterval ?? config.metrics?.interval)
  if (intervalProblem !== undefined) problem("metrics.interval", intervalProblem)
  const experimentTimeout = deadline("timeout", config.timeout)
  const testTimeout = deadline("test_timeout", config.test_timeout) ?? defaultTestTimeout
  const defaultEnvironment = environmentName(config.environment) ?? "localhost"
  const defaultRetries = overrides.retries ?? config.retries ?? 0

  const planService = (path: string, key: string, service: ServiceConfig): ServicePlan | undefined => {
    const plugin = plugins.findService(service.implementation)
    if (plugin === undefined) {
      problem(
        `${path}.implementation`,
        `unknown implementation "${service.implementation}" (known: ${plugins.serviceNames.join(", ")})`
      )
      return undefined
    }
    const spec = plugin.roles[service.role]
    if (spec === undefined) {
      problem(
        `${path}.role`,
        `${plugin.name} cannot be a ${service.role} (it has: ${Object.keys(plugin.roles).join(", ")})`
      )
      return undefined
    }
    const version = service.version ?? plugin.versions[0] ?? "default"
    if (plugin.versions.length > 0 && !plugin.versions.includes(version) && !plugin.versions.includes("any")) {
      problem(`${path}.version`, `${plugin.name} has no version "${version}" (it has: ${plugin.versions.join(", ")})`)
    }
    const given = service.parameters ?? {}
    for (const [parameter, reason] of ServiceCommand.checkParameters(spec.parameters ?? {}, given)) {
      problem(`${path}.parameters.${parameter}`, reason)
    }
    const readiness = service.readiness ?? ServicePlugin.readinessOf(service.role, spec)
    const where = service.readiness === undefined ? `${path}.implementation` : `${path}.readiness`
    const ownTimeout = deadline(`${path}.timeout`, service.timeout)
    const readinessTimeout =
      ownTimeout ??
      (readiness.kind === "none" ? undefined : pluginDeadline(`${where}.timeout`, readiness.timeout)) ??
      defaultReadinessTimeout
    const matcher = readiness.kind === "log" ? compiled(`${where}.pattern`, readiness.pattern) : undefined
    if (service.role === "client" && service.port !== undefined)
      problem(`${path}.port`, "only a server listens on a port")
    displayName(`${path}.name`, service.name)
    for (const [hook, reason] of Hooks.problems(service)) problem(`${path}.${hook}`, reason)
    return {
      key,
      name: service.name ?? key,
      plugin,
      version,
      type: service.type ?? plugin.type,
      role: service.role,
      spec: Hooks.withRun(spec, service.run),
      lifetime: ServicePlugin.lifetimeOf(service.role, spec),
      readiness:
        // A pattern that did not compile is a problem already: this plan is never run.
        readiness.kind === "none" || (readiness.kind === "log" && matcher === undefined)
          ? { kind: "none" }
          : readiness.kind === "log"
            ? { kind: "log", pattern: matcher!, timeout: readinessTimeout }
            : readiness.kind === "port"
              ? { kind: "port", timeout: readinessTimeout }
              : { kind: "command", command: readiness.command, timeout: readinessTimeout },
      target: service.target,
      fixedPort: service.port,
      hooks: Hooks.hooksOf(service),
      parameters: ServiceCommand.resolveParameters(spec.parameters ?? {}, given),
      timeout: ownTimeout ?? deadline(`${path}.run.timeout`, service.run?.timeout),
      execution: service.execution
    }
  }

  const planTest = (
    path: string,
    test: Omit<TestConfig, "services">,
    services: ReadonlyArray<readonly [string, string, ServiceConfig]>,
    matrix: TestPlan["matrix"]
  ): TestPlan => {
    const planned = services.flatMap(([servicePath, key, config]) => {
      fileName(servicePath, key)
      const plannedService = planService(servicePath, key, config)
      return plannedService === undefined ? [] : [plannedService]
    })
    const keys = new Set(services.map(([, key]) => key))
    const testKnown = new Set([
      ...TemplateCheck.attemptVariables,
      ...services.flatMap(([, key, config]) => TemplateCheck.perService(key, config.role === "server"))
    ])
    const serviceKnown = new Map<string, ReadonlySet<string>>()
    for (const service of planned) {
      const servicePath = services.find(([, key]) => key === service.key)![0]
      const checked = TemplateCheck.ofService(servicePath, service, testKnown)
      serviceKnown.set(service.key, checked.known)
      templates.push(...checked.pending)
    }
    for (const [servicePath, , config] of services) {
      if (config.target === undefined) continue
      const target = services.find(([, key]) => key === config.target)
      if (target === undefined)
        problem(`${servicePath}.target`, `no service "${config.target}" in this test (has: ${[...keys].join(", ")})`)
      else if (target[2].role !== "server") problem(`${servicePath}.target`, `"${config.target}" is not a server`)
    }
    const hasReplayStep = Array.isArray(test.steps) && test.steps.some((step) => "replay" in step || "fleet" in step)
    if (services.length === 0 && !hasReplayStep) problem(`${path}.services`, "a test needs at least one service")
    const steps: ReadonlyArray<Step> = Array.isArray(test.steps)
      ? (test.steps as ReadonlyArray<Step>)
      : test.steps !== undefined && "wait" in test.steps && test.steps.wait !== undefined
        ? [{ wait: test.steps.wait }]
        : []
    const stepNames = new Set<string>()
    const replaySteps = new Set<string>()
    steps.forEach((step, index) => {
      const stepPath = `${path}.steps[${index}]`
      if (!("wait" in step)) {
        const kind = "run" in step ? "run" : "replay" in step ? "replay" : "fleet"
        fileName(
          `${stepPath}.${kind}.name`,
          "run" in step ? step.run.name : "replay" in step ? step.replay.name : step.fleet.name
        )
      }
      if ("wait" in step) return
      if ("replay" in step) {
        const replay = step.replay
        const name = replay.name ?? `step${index}`
        stepNames.add(name)
        replaySteps.add(name)
        if (replay.service !== undefined) {
          const target = services.find(([, key]) => key === replay.service)
          if (target === undefined) problem(`${stepPath}.replay.service`, `no service "${replay.service}" in this test`)
          else if (target[2].implementation !== "replay")
            problem(`${stepPath}.replay.service`, `"${replay.service}" is not a replay service`)
          if (replay.script !== undefined || replay.command !== undefined)
            problem(`${stepPath}.replay`, "give service, or script and command, not both")
        } else {
          if (replay.script === undefined) problem(`${stepPath}.replay.script`, "give the recorded script (or service)")
          if (replay.command === undefined || replay.command.length === 0)
            problem(`${stepPath}.replay.command`, "give the client command run against the replay")
          if (replay.script !== undefined)
            templates.push({ path: `${stepPath}.replay.script`, source: replay.script, known: testKnown })
          const clientKnown = new Set([...testKnown, "replay_host", "replay_port"])
          for (const [at, source] of (replay.command ?? []).entries())
            templates.push({ path: `${stepPath}.replay.command[${at}]`, source, known: clientKnown })
          for (const [name, source] of Object.entries(replay.env ?? {}))
            templates.push({ path: `${stepPath}.replay.env.${name}`, source, known: clientKnown })
        }
        deadline(`${stepPath}.replay.timeout`, replay.timeout)
        deadline(`${stepPath}.replay.step_timeout`, replay.step_timeout)
        return
      }
      if ("fleet" in step) {
        const fleet = step.fleet
        stepNames.add(fleet.name ?? `step${index}`)
        if ((fleet.agents === undefined) === (fleet.expect === undefined))
          problem(`${stepPath}.fleet`, "give exactly one of agents (started by the step) or expect (external agents)")
        if (fleet.expect !== undefined && fleet.secret_file === undefined)
          problem(`${stepPath}.fleet.secret_file`, "external agents (expect) need the shared secret file")
        if (fleet.pipeline.length === 0) problem(`${stepPath}.fleet.pipeline`, "empty pipeline")
        fleet.pipeline.forEach((command, at) => {
          if (command.trim() === "") problem(`${stepPath}.fleet.pipeline[${at}]`, "empty command")
        })
        if (fleet.broker !== undefined && !/^(mqtts?|wss?|tcp|ssl):\/\/[^/]/.test(fleet.broker))
          problem(`${stepPath}.fleet.broker`, `not an MQTT URL: ${fleet.broker}`)
        deadline(`${stepPath}.fleet.step_timeout`, fleet.step_timeout)
        deadline(`${stepPath}.fleet.registration_timeout`, fleet.registration_timeout)
        return
      }
      const run = step.run
      stepNames.add(run.name ?? `step${index}`)
      if ((run.command === undefined) === (run.shell === undefined))
        problem(`${stepPath}.run`, "give exactly one of command or shell")
      if (run.command !== undefined && run.command.length === 0) problem(`${stepPath}.run.command`, "empty command")
      if (run.service !== undefined && !keys.has(run.service))
        problem(`${stepPath}.run.service`, `no service "${run.service}" in this test`)
      deadline(`${stepPath}.run.timeout`, run.timeout)
      const known = (run.service === undefined ? undefined : serviceKnown.get(run.service)) ?? testKnown
      for (const [at, source] of (run.command ?? []).entries())
        templates.push({ path: `${stepPath}.run.command[${at}]`, source, known })
      if (run.shell !== undefined) templates.push({ path: `${stepPath}.run.shell`, source: run.shell, known })
      for (const [name, source] of Object.entries(run.env ?? {}))
        templates.push({ path: `${stepPath}.run.env.${name}`, source, known })
    })
    const assertions = test.assertions ?? []
    const plannedAssertions: Array<PlannedAssertion> = []
    assertions.forEach((assertion, index) => {
      const assertionPath = `${path}.assertions[${index}]`
      if (assertion.type === "output_matches") {
        const matcher = compiled(`${assertionPath}.pattern`, assertion.pattern)
        if (matcher !== undefined) plannedAssertions.push({ ...assertion, matcher })
      } else plannedAssertions.push(assertion)
      if (assertion.type === "file_exists") {
        templates.push({ path: `${assertionPath}.path`, source: assertion.path, known: testKnown })
        return
      }
      if ("step" in assertion && assertion.step !== undefined) {
        if (!stepNames.has(assertion.step)) problem(`${assertionPath}.step`, `no step named "${assertion.step}"`)
        if (assertion.service !== undefined) problem(assertionPath, "give service or step, not both")
      } else if (assertion.service === undefined) {
        problem(assertionPath, "give the service (or step) it is about")
      } else if (!keys.has(assertion.service)) {
        problem(`${assertionPath}.service`, `no service "${assertion.service}" in this test`)
      }
      if (assertion.type === "replay_passed") {
        if (assertion.step !== undefined && stepNames.has(assertion.step) && !replaySteps.has(assertion.step))
          problem(`${assertionPath}.step`, `"${assertion.step}" is not a replay step`)
        const target = services.find(([, key]) => key === assertion.service)
        if (target !== undefined && target[2].implementation !== "replay")
          problem(`${assertionPath}.service`, `"${assertion.service}" is not a replay service`)
      }
      for (const [suffix, message] of ObservePlan.assertionProblems(assertion, services))
        problem(`${assertionPath}${suffix}`, message)
      if (assertion.type === "service_responsive") {
        deadline(`${assertionPath}.timeout`, assertion.timeout)
        const target = services.find(([, key]) => key === assertion.service)
        if (target !== undefined && target[2].role !== "server")
          problem(`${assertionPath}.service`, "only a server has a port to probe")
      }
    })
    const environment = environmentName(test.environment ?? test.network_environment) ?? defaultEnvironment
    if (plugins.findEnvironment(environment) === undefined) {
      problem(
        `${path}.${test.environment === undefined && test.network_environment !== undefined ? "network_environment" : "environment"}`,
        `unknown environment "${environment}" (known: ${plugins.environmentNames.join(", ")})`
      )
    }
    return {
      name: "",
      slug: "",
      description: test.description,
      environment,
      services: [...planned.filter((s) => s.role === "server"), ...planned.filter((s) => s.role !== "server")],
      steps,
      assertions: plannedAssertions,
      timeout: deadline(`${path}.timeout`, test.timeout) ?? testTimeout,
      retries: overrides.retries ?? test.retries ?? defaultRetries,
      capture: test.capture ?? config.capture ?? false,
      metricsInterval: ObservePlan.intervalOf(overrides.metricsInterval, config.metrics?.interval, assertions),
      matrix
    }
  }

  const tests: Array<TestPlan> = []
  ;(config.tests ?? []).forEach((test, index) => {
    const path = `tests[${overrides.indices?.tests[index] ?? index}]`
    displayName(`${path}.name`, test.name)
    const services = Object.entries(test.services ?? {}).map(
      ([key, service]) => [`${path}.services.${key}`, key, service] as const
    )
    tests.push({ ...planTest(path, test, services, undefined), name: test.name })
  })
  const entry = (value: MatrixEntry) => (typeof value === "string" ? { implementation: value } : value)
  ;(config.matrices ?? []).forEach((matrix, index) => {
    const path = `matrices[${overrides.indices?.matrices[index] ?? index}]`
    displayName(`${path}.name`, matrix.name)
    if (matrix.servers.length === 0) problem(`${path}.servers`, "a matrix needs at least one server")
    if (matrix.clients.length === 0) problem(`${path}.clients`, "a matrix needs at least one client")
    matrix.servers.forEach((serverEntry, row) => {
      matrix.clients.forEach((clientEntry, column) => {
        // The matrix's own parameters (an interop test case: `testcase: alpn`) go to both roles; an entry's win.
        const withShared = <E extends { readonly parameters?: ServiceConfig["parameters"] }>(value: E) =>
          matrix.parameters === undefined
            ? value
            : { ...value, parameters: { ...matrix.parameters, ...value.parameters } }
        const server = withShared(entry(serverEntry))
        const client = withShared(entry(clientEntry))
        const services = [
          [`${path}.servers[${row}]`, "server", { ...server, role: "server" as const }] as const,
          [`${path}.clients[${column}]`, "client", { ...client, role: "client" as const, target: "server" }] as const
        ]
        tests.push({
          ...planTest(path, matrix, services, {
            row: server.implementation,
            column: client.implementation,
            name: matrix.name
          }),
          name: `${matrix.name} [${server.implementation} server, ${client.implementation} client]`
        })
      })
    })
  })

  const seen = new Map<string, number>()
  const slugs = new Set<string>()
  const named = tests.map((test, index) => {
    const count = (seen.get(test.name) ?? 0) + 1
    seen.set(test.name, count)
    if (count === 2) problem(`tests[${index}].name`, `two tests are named "${test.name}"`)
    let slug = slugify(test.name)
    for (let n = 2; slugs.has(slug); n++) slug = `${slugify(test.name)}-${n}`
    slugs.add(slug)
    return { ...test, slug }
  })
  const selected =
    overrides.filter === undefined ? named : named.filter((test) => test.name.includes(overrides.filter!))
  const needsCertificate = selected.some((test) =>
    test.services.some((service) => service.plugin.requires?.includes("certificate") ?? false)
  )
  const extra = needsCertificate ? TemplateCheck.certificateVariables : []
  for (const pending of templates) {
    const reason = TemplateCheck.check(pending, extra)
    if (reason !== undefined) problem(pending.path, pending.what === undefined ? reason : `${pending.what}: ${reason}`)
  }
  if (named.length === 0 && problems.length === 0)
    problem("tests", "the experiment has no tests (give tests or matrices)")
  else if (selected.length === 0 && overrides.filter !== undefined)
    problem("tests", `no test name contains "${overrides.filter}"`)

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
