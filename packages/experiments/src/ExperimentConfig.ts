/**
 * The experiment file: PANTHER's YAML shape (tests with services keyed by name, `steps`, `assertions`,
 * `fast_fail`, `paths`, `logging`) plus testbed's own keys (per-test `timeout` and `retries`, `concurrency`,
 * interop `matrices`, `environment`). Decoding reports every problem at once, each with its YAML path.
 */
import { ByteSize, ExitCode, TimeSpan } from "@testbed/events"
import { Problems, ServicePlugin } from "@testbed/plugins"
import { Effect, FileSystem, Result, Runtime, Schema } from "effect"
import * as Yaml from "yaml"
import { inFileOrder, locate, positionAt } from "./internal/yamlPositions.ts"

/**
 * Every length of time in the file: seconds as a number (PANTHER's `wait: 2`) or text ("500ms", "1m30s",
 * "2 minutes"), decoded here to a `Duration` (see `TimeSpan` in @testbed/events).
 */
const DurationInput = TimeSpan.TimeSpan

const ParameterValue = ServicePlugin.ParameterValue
/**
 * A service's readiness: the plugin's replaced (`kind`, with its pattern or command), or only its deadline changed
 * (`timeout` alone: the plugin's kind and pattern kept), e.g. a built-in server's 10 s on a loaded machine.
 */
const Readiness = Schema.Union([ServicePlugin.Readiness, Schema.Struct({ timeout: Schema.String })])

/**
 * The execution environment of a local service: tools wrapped around its command and limits it runs under, declared
 * in the file so a plugin need not change. A tool that is not installed is reported at `--dry-run`.
 */
export const Execution = Schema.Struct({
  /** `strace -f -c`: a syscall summary per service (`strace.txt`), parsed into the report. */
  strace: Schema.optionalKey(Schema.Boolean),
  /** valgrind memcheck: its error count is the input of a `memcheck_clean` assertion (`valgrind.txt`). */
  valgrind: Schema.optionalKey(Schema.Boolean),
  /** `perf stat`: the kernel's counters of the service (task clock, context switches, page faults…; `perf.txt`). */
  perf: Schema.optionalKey(Schema.Boolean),
  limits: Schema.optionalKey(
    Schema.Struct({
      /** Memory of the whole process tree (a memory cgroup): past it the kernel kills the service. */
      memory: Schema.optionalKey(ByteSize.ByteSize),
      /** CPU time of each process (`prlimit --cpu`, whole seconds): past it the kernel sends SIGXCPU, then SIGKILL. */
      cpu: Schema.optionalKey(DurationInput)
    })
  )
})
export type Execution = typeof Execution.Type

/**
 * One lifecycle command of a service (PANTHER's prepare / pre-run / run / post-run): argv (`command`, templates
 * allowed, no shell) or a `shell` script, with its own `timeout` (default 1 minute) and `env`.
 */
export const Hook = Schema.Struct({
  command: Schema.optionalKey(Schema.Array(Schema.String)),
  shell: Schema.optionalKey(Schema.String),
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  timeout: Schema.optionalKey(DurationInput)
})
export type Hook = typeof Hook.Type

export const ServiceConfig = Schema.Struct({
  /** Display name; defaults to the key under `services`. */
  name: Schema.optionalKey(Schema.String),
  implementation: Schema.String,
  version: Schema.optionalKey(Schema.String),
  type: Schema.optionalKey(Schema.Literals(["iut", "tester"])),
  role: Schema.Literals(["server", "client"]),
  /** The key of the server service a client talks to. */
  target: Schema.optionalKey(Schema.String),
  /** A fixed port instead of a free one (a server). */
  port: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))),
  /** PANTHER's docker port mappings; kept for compatibility, unused on localhost. */
  ports: Schema.optionalKey(Schema.Array(Schema.Union([Schema.String, Schema.Int]))),
  parameters: Schema.optionalKey(Schema.Record(Schema.String, ParameterValue)),
  readiness: Schema.optionalKey(Readiness),
  /** Longest this service may run: a task that runs longer, or a server that is not ready in time. */
  timeout: Schema.optionalKey(DurationInput),
  /** Tools wrapped around its command (strace, valgrind) and limits it runs under (see `Execution`). */
  execution: Schema.optionalKey(Execution),
  description: Schema.optionalKey(Schema.String),
  /** Runs where the service runs, once its directory and variables exist, before any service of the test starts. */
  prepare: Schema.optionalKey(Hook),
  /** Runs where the service runs after every `prepare`, before the services start. */
  pre_run: Schema.optionalKey(Hook),
  /** Replaces the plugin's command for this service; its `timeout` is the service's unless `timeout` is set. */
  run: Schema.optionalKey(Hook),
  /** Runs where the service runs once the steps and tasks are done, before assertions (the services still up). */
  post_run: Schema.optionalKey(Hook)
})
export type ServiceConfig = typeof ServiceConfig.Type

export const RunStep = Schema.Struct({
  /** Name used by assertions (`step: <name>`); default `step<index>`. */
  name: Schema.optionalKey(Schema.String),
  /** Program and arguments (templates allowed); no shell. */
  command: Schema.optionalKey(Schema.Array(Schema.String)),
  /** A script for `sh -c`, only when a shell is really wanted. */
  shell: Schema.optionalKey(Schema.String),
  /** Run in this service's directory with its variables (its environment). Default: the test's directory. */
  service: Schema.optionalKey(Schema.String),
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  timeout: Schema.optionalKey(DurationInput),
  /** The exit code that makes the step pass (default 0); `any` never fails the step on its code. */
  expect_exit: Schema.optionalKey(Schema.Union([Schema.Int, Schema.Literal("any")])),
  description: Schema.optionalKey(Schema.String)
})
export type RunStep = typeof RunStep.Type

/**
 * Replays a recorded script's server side (@testbed/replay) for a client `command` run against it, or — with
 * `service` — waits for a `replay` service to finish and checks its outcome. Fails on the first divergence.
 */
export const ReplayStep = Schema.Struct({
  name: Schema.optionalKey(Schema.String),
  /** The recorded script, relative to the experiment file. */
  script: Schema.optionalKey(Schema.String),
  /** The entry of the script file to play (default `recorded_script`). */
  entry: Schema.optionalKey(Schema.String),
  /** The client: program and arguments (templates allowed), run with NDS_TEST_HOST/PORT and TESTBED_REPLAY_HOST/PORT. */
  command: Schema.optionalKey(Schema.Array(Schema.String)),
  env: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  /** Instead of script + command: a `replay` service of this test whose outcome is checked. */
  service: Schema.optionalKey(Schema.String),
  connections: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** How long the replay waits for client input at one step (default 10 seconds). */
  step_timeout: Schema.optionalKey(DurationInput),
  timeout: Schema.optionalKey(DurationInput),
  /** The client's exit code that makes the step pass (default 0); `any` checks only the replay. */
  expect_exit: Schema.optionalKey(Schema.Union([Schema.Int, Schema.Literal("any")])),
  description: Schema.optionalKey(Schema.String)
})
export type ReplayStep = typeof ReplayStep.Type

/**
 * Pushes a pipeline of shell commands to a fleet of agents over MQTT (@testbed/fleet): `agents` local agents the
 * step starts itself (with a secret it makes), or `expect` external ones (signed with `secret_file`).
 */
export const FleetStep = Schema.Struct({
  name: Schema.optionalKey(Schema.String),
  /** An MQTT broker URL; default: an embedded broker for the length of the step. */
  broker: Schema.optionalKey(Schema.String),
  agents: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  expect: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** Shell commands run in order on every agent. */
  pipeline: Schema.Array(Schema.String),
  /** Per command (default 1 minute). */
  step_timeout: Schema.optionalKey(DurationInput),
  /** How long to wait for every agent to register (default 30 seconds). */
  registration_timeout: Schema.optionalKey(DurationInput),
  /** The shared secret (relative to the experiment file); required with `expect`. */
  secret_file: Schema.optionalKey(Schema.String),
  description: Schema.optionalKey(Schema.String)
})
export type FleetStep = typeof FleetStep.Type

export const Step = Schema.Union([
  Schema.Struct({ wait: DurationInput, description: Schema.optionalKey(Schema.String) }),
  Schema.Struct({ run: RunStep }),
  Schema.Struct({ replay: ReplayStep }),
  Schema.Struct({ fleet: FleetStep })
])
export type Step = typeof Step.Type

/** PANTHER wrote steps as one map (`steps: {wait: 2}`); testbed also takes a list of steps in order. */
export const Steps = Schema.Union([Schema.Array(Step), Schema.Struct({ wait: Schema.optionalKey(DurationInput) })])

const Target = {
  service: Schema.optionalKey(Schema.String),
  step: Schema.optionalKey(Schema.String)
}

export const Assertion = Schema.Union([
  Schema.Struct({ type: Schema.Literal("exit_code"), ...Target, equals: Schema.optionalKey(Schema.Int) }),
  Schema.Struct({
    type: Schema.Literal("output_matches"),
    ...Target,
    pattern: Schema.String,
    stream: Schema.optionalKey(Schema.Literals(["stdout", "stderr", "any"]))
  }),
  Schema.Struct({
    type: Schema.Literal("service_responsive"),
    service: Schema.String,
    protocol: Schema.optionalKey(Schema.Literals(["tcp", "http"])),
    path: Schema.optionalKey(Schema.String),
    timeout: Schema.optionalKey(DurationInput)
  }),
  Schema.Struct({ type: Schema.Literal("file_exists"), path: Schema.String }),
  /** What a service used stays under every limit given (its sampled peaks and totals; sampling turns on for it). */
  Schema.Struct({
    type: Schema.Literal("resource_below"),
    service: Schema.String,
    peak_rss: Schema.optionalKey(ByteSize.ByteSize),
    cpu_time: Schema.optionalKey(DurationInput),
    threads: Schema.optionalKey(Schema.Int),
    open_files: Schema.optionalKey(Schema.Int)
  }),
  /** A service run under valgrind (`execution: {valgrind: true}`) had at most `max_errors` memcheck errors (0). */
  Schema.Struct({
    type: Schema.Literal("memcheck_clean"),
    service: Schema.String,
    max_errors: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))
  }),
  /** A `replay` service (`service`) or a replay step (`step`) saw the client follow the script to its end. */
  Schema.Struct({ type: Schema.Literal("replay_passed"), ...Target })
])
export type Assertion = typeof Assertion.Type

const Environment = Schema.Union([
  Schema.String,
  Schema.Struct({ type: Schema.String, name: Schema.optionalKey(Schema.String) })
])

const TestSettings = {
  description: Schema.optionalKey(Schema.String),
  /** `localhost` (default) or another environment plugin. */
  environment: Schema.optionalKey(Environment),
  /** PANTHER's name for `environment`. */
  network_environment: Schema.optionalKey(Environment),
  timeout: Schema.optionalKey(DurationInput),
  retries: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /** Record each localhost service's traffic (its ports, on loopback) with tcpdump into `<service>.pcap`. */
  capture: Schema.optionalKey(Schema.Boolean),
  steps: Schema.optionalKey(Steps),
  assertions: Schema.optionalKey(Schema.Array(Assertion))
}

export const TestConfig = Schema.Struct({
  name: Schema.String,
  /** Optional only for a test made of replay or fleet steps. */
  services: Schema.optionalKey(Schema.Record(Schema.String, ServiceConfig)),
  ...TestSettings
})
export type TestConfig = typeof TestConfig.Type

/** One axis entry of a matrix: an implementation name, or a service config without its role. */
const MatrixEntry = Schema.Union([
  Schema.String,
  Schema.Struct({
    implementation: Schema.String,
    version: Schema.optionalKey(Schema.String),
    type: Schema.optionalKey(Schema.Literals(["iut", "tester"])),
    parameters: Schema.optionalKey(Schema.Record(Schema.String, ParameterValue)),
    readiness: Schema.optionalKey(Readiness)
  })
])
export type MatrixEntry = typeof MatrixEntry.Type

/** Every server × every client: one test per pair, services named `server` and `client`. */
export const MatrixConfig = Schema.Struct({
  name: Schema.String,
  servers: Schema.Array(MatrixEntry),
  clients: Schema.Array(MatrixEntry),
  /** Parameters given to every server and client of the matrix (an entry's own parameters win). */
  parameters: Schema.optionalKey(Schema.Record(Schema.String, ParameterValue)),
  ...TestSettings
})
export type MatrixConfig = typeof MatrixConfig.Type

export const ExperimentConfig = Schema.Struct({
  /** Default: the file name without extension. */
  name: Schema.optionalKey(Schema.String),
  description: Schema.optionalKey(Schema.String),
  environment: Schema.optionalKey(Environment),
  /** Tests run side by side at most. Default 1 (PANTHER ran them one by one). */
  concurrency: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  /** Default retries of every test. */
  retries: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  /** Default `capture` of every test (packet capture per service with tcpdump). */
  capture: Schema.optionalKey(Schema.Boolean),
  /** Per-service resource sampling (`service.resources` events); off unless given (or `--metrics-interval`). */
  metrics: Schema.optionalKey(Schema.Struct({ interval: DurationInput })),
  /** Default timeout of every test. Default 2 minutes. */
  test_timeout: Schema.optionalKey(DurationInput),
  /** The whole run; tests still running then end with status `timeout`, the rest are skipped. */
  timeout: Schema.optionalKey(DurationInput),
  fast_fail: Schema.optionalKey(
    Schema.Struct({ enabled: Schema.Boolean, test_level: Schema.optionalKey(Schema.Boolean) })
  ),
  paths: Schema.optionalKey(
    Schema.Struct({
      output_dir: Schema.optionalKey(Schema.String),
      plugins: Schema.optionalKey(Schema.Union([Schema.String, Schema.Array(Schema.String)])),
      /** PANTHER's other paths (log_dir, …): accepted, not used. */
      log_dir: Schema.optionalKey(Schema.String)
    })
  ),
  /** PANTHER's logging settings: accepted, not used (every event is in events.jsonl). */
  logging: Schema.optionalKey(Schema.Unknown),
  tests: Schema.optionalKey(Schema.Array(TestConfig)),
  matrices: Schema.optionalKey(Schema.Array(MatrixConfig))
})
export type ExperimentConfig = typeof ExperimentConfig.Type

export class ExperimentConfigInvalid extends Schema.TaggedError<ExperimentConfigInvalid>()("ExperimentConfigInvalid", {
  file: Schema.String,
  /** In file order, each with its line and column when the file could be read. */
  problems: Schema.Array(
    Schema.Struct({
      path: Schema.String,
      message: Schema.String,
      line: Schema.optionalKey(Schema.Int),
      column: Schema.optionalKey(Schema.Int)
    })
  )
}) {
  override get message(): string {
    return `${this.file}: ${this.problems.length} problem(s)\n${Problems.format(this.problems, this.file)}`
  }
  /** A file with problems is a usage error: exit code 2. */
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

/**
 * Aliases a file may expand. A "billion laughs" file (aliases of aliases of lists) expands exponentially; real
 * experiment files use a handful. Past this, the file is refused with a problem instead of filling memory.
 */
export const maxAliasCount = 1000

/** Where each kept test and matrix was in the file, so later problems point at the right entry. */
export interface Indices {
  readonly tests: ReadonlyArray<number>
  readonly matrices: ReadonlyArray<number>
}

/** A config made of everything that decoded, the problems of the rest, and where the kept entries were. */
export interface Partial {
  readonly config: ExperimentConfig
  readonly problems: ReadonlyArray<Problems.Problem>
  readonly indices: Indices
  /** Problems found later (planning), with their line and column in this file, and all of them in file order. */
  readonly locate: (problems: ReadonlyArray<Problems.Problem>) => ReadonlyArray<Problems.Problem>
}

// The parser's own positions (`linePos`) are only filled in with `prettyErrors`, which also rewrites the message
// into several lines with a caret: the offsets and a LineCounter give the line and column of every error.
const yamlProblems = (document: Yaml.Document, lines: Yaml.LineCounter): ReadonlyArray<Problems.Problem> =>
  document.errors.map((error) => ({
    path: "",
    message: error.message.split("\n")[0] ?? error.message,
    ...positionAt(lines, error.pos[0])
  }))

/**
 * `value` without the struct keys whose values failed to decode. An optional value that was wrong (`timeout: soon`)
 * is left out so the rest can still be checked; without a required one, decoding fails again.
 */
const withoutFailed = (value: unknown, failed: ReadonlyArray<ReadonlyArray<PropertyKey>>): unknown => {
  const copy = structuredClone(value)
  for (const at of failed) {
    const key = at[at.length - 1]
    const parent = at
      .slice(0, -1)
      .reduce<unknown>(
        (node, step) =>
          typeof node === "object" && node !== null ? (node as Record<PropertyKey, unknown>)[step] : undefined,
        copy
      )
    if (key !== undefined && typeof parent === "object" && parent !== null && !Array.isArray(parent)) {
      delete (parent as Record<PropertyKey, unknown>)[key]
    }
  }
  return copy
}

/**
 * Decodes one part of the file with every problem; when it has problems, also decodes it without the values that
 * failed, so planning can still report the part's other problems (the file has problems: it is never run).
 */
const decodeForChecking = <A>(schema: Schema.Codec<A, unknown>, value: unknown, base: ReadonlyArray<PropertyKey>) => {
  const decoded = Problems.decodeAll(schema, value, base)
  if (decoded.ok) return { value: decoded.value, problems: [] }
  const again = Problems.decodeAll(schema, withoutFailed(value, decoded.at))
  return { value: again.ok ? again.value : undefined, problems: decoded.problems }
}

/**
 * Decodes what it can: the top level, then each test and matrix on its own, so one broken test does not hide
 * the problems of the others (which only planning against the plugins can find).
 */
export const parsePartial = (text: string, file: string): Effect.Effect<Partial, ExperimentConfigInvalid> => {
  const lines = new Yaml.LineCounter()
  const document = Yaml.parseDocument(text, { prettyErrors: false, lineCounter: lines })
  if (document.errors.length > 0)
    return Effect.fail(new ExperimentConfigInvalid({ file, problems: yamlProblems(document, lines) }))
  const located = (found: ReadonlyArray<Problems.Problem>) => inFileOrder(found.map(locate(document, lines)))
  const converted = Result.try({
    try: (): unknown => document.toJS({ maxAliasCount }),
    catch: (error) => (error instanceof Error ? error.message : String(error))
  })
  if (Result.isFailure(converted)) {
    return Effect.fail(
      new ExperimentConfigInvalid({
        file,
        problems: [
          {
            path: "",
            ...positionAt(lines, 0),
            message: `aliases expand too far (more than ${maxAliasCount} alias uses; a "billion laughs" file?): ${converted.failure}`
          }
        ]
      })
    )
  }
  const json = converted.success
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Effect.fail(
      new ExperimentConfigInvalid({
        file,
        problems: located([{ path: "", message: "expected a mapping with tests" }])
      })
    )
  }
  const { tests, matrices, ...rest } = json as Record<string, unknown>
  const problems: Array<Problems.Problem> = []
  const top = decodeForChecking(ExperimentConfig as unknown as Schema.Codec<ExperimentConfig, unknown>, rest, [])
  problems.push(...top.problems)
  const keep = <A>(key: "tests" | "matrices", value: unknown, schema: Schema.Codec<A, unknown>) => {
    const kept: Array<A> = []
    const indices: Array<number> = []
    if (value === undefined || value === null) return { kept, indices }
    if (!Array.isArray(value)) {
      problems.push({ path: key, message: "expected a list" })
      return { kept, indices }
    }
    value.forEach((item, index) => {
      const decoded = decodeForChecking(schema, item, [key, index])
      problems.push(...decoded.problems)
      if (decoded.value !== undefined) {
        kept.push(decoded.value)
        indices.push(index)
      }
    })
    return { kept, indices }
  }
  const keptTests = keep("tests", tests, TestConfig as unknown as Schema.Codec<TestConfig, unknown>)
  const keptMatrices = keep("matrices", matrices, MatrixConfig as unknown as Schema.Codec<MatrixConfig, unknown>)
  return Effect.succeed({
    config: { ...top.value, tests: keptTests.kept, matrices: keptMatrices.kept },
    problems: located(problems),
    indices: { tests: keptTests.indices, matrices: keptMatrices.indices },
    locate: located
  })
}

/** Parses YAML text into a config, or every problem found. */
export const parse = (text: string, file: string): Effect.Effect<ExperimentConfig, ExperimentConfigInvalid> =>
  Effect.flatMap(parsePartial(text, file), (partial) =>
    partial.problems.length === 0
      ? Effect.succeed(partial.config)
      : Effect.fail(new ExperimentConfigInvalid({ file, problems: partial.problems }))
  )

const read = (file: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs
      .readFileString(file)
      .pipe(
        Effect.mapError(
          (error) =>
            new ExperimentConfigInvalid({ file, problems: [{ path: "", message: `cannot read: ${error.message}` }] })
        )
      )
  )

export const load = Effect.fn("ExperimentConfig.load")(function* (file: string) {
  return yield* parse(yield* read(file), file)
})

export const loadPartial = Effect.fn("ExperimentConfig.loadPartial")(function* (file: string) {
  return yield* parsePartial(yield* read(file), file)
})
