// Runners and coordinators as real processes: `process.execPath` (the real Node, which passes signals on) running
// the CLI's source entry. Each runner is stopped (SIGTERM, then SIGKILL) when its scope closes.
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { EventLog } from "@testbed/events"
import { Duration, Effect, Redacted, Result, Schedule } from "effect"
import * as Status from "../src/Status.ts"

/** The CLI every process here runs: the source entry, or an installed one (`useCli`). */
export let cli = decodeURIComponent(new URL("../../../scripts/testbed.ts", import.meta.url).pathname)

/**
 * Runs every later process with the CLI at `entry` (an installed `dist/bin.js`, `runnerImage.ts`'s
 * `installWorkspace`): the benches time what a user runs, without loading the libraries from TypeScript sources.
 */
export const useCli = (entry: string) => {
  cli = entry
}
export const fixtures = decodeURIComponent(new URL("../../../fixtures/experiments/", import.meta.url).pathname)
export const secret = "test-cluster-secret-0123456789"

/**
 * The lock expiry of every runner and coordinator of these tests: the default. With 6 s (a refresh every 2 s, a
 * lease of 4 s) runners on a machine at load 30–45 were starved of CPU for 3–8 s at a time, ran past their lease and
 * gave up shards they held (an attempt recorded runner_lost and run again, a matrix cell lost).
 */
export const lockExpiry = "15s"

/**
 * How long one `testbed` process of these tests may take (a run, a runner's start). Not a speed check (tests never
 * assert wall-clock times): a deadline. These tests are CPU-bound on a 2-core CI machine shared with other work, and a
 * process there gets about cores / load of a core: the matrix test (about 7 s of CPU, 11 s idle) took 192 s at load
 * 23 and 371 s at load 41 (stress-ng and other work). Ten minutes holds that at load ~40 with room to spare.
 */
export const runBudget = Duration.minutes(10)

/**
 * Vitest's timeout for a test of these files: its runs' budget and a minute for its checks and for stopping what it
 * started, so that a run that overruns fails with its own output (and is stopped before the next test starts)
 * rather than with vitest's bare timeout.
 */
export const testTimeout = Duration.toMillis(runBudget) + 60_000

export const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode)
    else child.once("exit", (code) => resolve(code))
  })

export interface Runner {
  readonly name: string
  readonly workdir: string
  readonly child: ChildProcess
  readonly output: () => string
}

/**
 * Runs `argv` in a mount namespace of its own where `hidden` is an empty tmpfs: the process shares no path under
 * it with this one (`unshare` execs, so signals reach the program itself).
 */
const hiding = (hidden: string | undefined, argv: ReadonlyArray<string>): [string, ReadonlyArray<string>] =>
  hidden === undefined
    ? [argv[0]!, argv.slice(1)]
    : [
        "unshare",
        ["-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"', hidden, ...argv]
      ]

/** How a runner is started besides its flags. */
export interface RunnerStart {
  /** A directory it cannot see (a mount namespace of its own). */
  readonly hidden?: string | undefined
  /** Its working directory; `--workdir` is then given relative to it, as a user who types `--workdir runs` does. */
  readonly cwd?: string | undefined
  /** More environment; `urlFromEnv`: the URL in `TESTBED_CLUSTER_URL` instead of `--cluster`. */
  readonly env?: Record<string, string> | undefined
  readonly urlFromEnv?: boolean | undefined
}

/** Starts a runner and waits until it is live in `testbed_runners`. */
export const startRunner = (
  url: string,
  name: string,
  port: number,
  args: ReadonlyArray<string>,
  { hidden, cwd, env = {}, urlFromEnv = false }: RunnerStart = {}
) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const workdir = mkdtempSync(join(tmpdir(), `testbed-runner-${name}-`))
      let output = ""
      const [command, argv] = hiding(hidden, [
        process.execPath,
        cli,
        "runner",
        ...(urlFromEnv ? [] : ["--cluster", url]),
        "--name",
        name,
        "--advertise",
        `127.0.0.1:${port}`,
        "--workdir",
        cwd === undefined ? workdir : relative(cwd, workdir),
        // `lockExpiry` unless the test gives its own.
        ...(args.includes("--lock-expiry") ? [] : ["--lock-expiry", lockExpiry]),
        ...args
      ])
      const child = spawn(command, argv, {
        env: {
          ...process.env,
          TESTBED_CLUSTER_SECRET: secret,
          // The source entry (scripts/testbed.ts) moves to INIT_CWD, which pnpm and npm set to where they started.
          ...(cwd === undefined ? {} : { INIT_CWD: cwd }),
          ...(urlFromEnv ? { TESTBED_CLUSTER_URL: url } : {}),
          ...env
        },
        stdio: ["ignore", "pipe", "pipe"],
        ...(cwd === undefined ? {} : { cwd })
      })
      child.stdout?.on("data", (data) => (output = (output + String(data)).slice(-20_000)))
      child.stderr?.on("data", (data) => (output = (output + String(data)).slice(-20_000)))
      yield* waitForRunner(url, name, true)
      return { name, workdir, child, output: () => output } satisfies Runner
    }),
    (runner) =>
      Effect.andThen(
        stop(runner),
        Effect.sync(() => rmSync(runner.workdir, { recursive: true, force: true }))
      )
  )

/** SIGTERM (a coordinator stops its run and writes its reports; a runner leaves the cluster), then SIGKILL after 20 s. */
export const stopChild = (child: ChildProcess) =>
  Effect.promise(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000)
    await exited(child)
    clearTimeout(timer)
  })

/** SIGTERM, then SIGKILL after 20 s. */
export const stop = (runner: Runner) => stopChild(runner.child)

/** Waits (up to `runBudget`: a runner warms up before it is live) until the runner is live (or gone). */
export const waitForRunner = (url: string, name: string, live: boolean) =>
  Status.runners(Redacted.make(url), Duration.seconds(6)).pipe(
    Effect.flatMap((rows) =>
      rows.some((row) => row.name === name && row.live) === live ? Effect.void : Effect.fail("not yet" as const)
    ),
    Effect.retry({ schedule: Schedule.spaced("500 millis") }),
    Effect.timeout(runBudget),
    Effect.orDie
  )

export interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly runDir: string | undefined
}

/**
 * Runs `testbed ARGS` to its end (at most `runBudget`, then SIGKILL) with the cluster secret in its environment.
 * Interrupted (vitest's timeout interrupts the test), it stops the process: a coordinator left running (as it was
 * when this waited on a plain promise) dispatched attempts into the next test, and SIGKILLed later it left them to run
 * (a run's requests are durable, for --resume).
 */
export const testbed = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [cli, ...args], {
        env: { ...process.env, TESTBED_CLUSTER_SECRET: secret, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const output = { stdout: "", stderr: "" }
      child.stdout?.on("data", (data) => (output.stdout += String(data)))
      child.stderr?.on("data", (data) => (output.stderr += String(data)))
      return { child, output }
    }),
    ({ child, output }) =>
      Effect.promise(async (): Promise<Ran> => {
        const timer = setTimeout(() => child.kill("SIGKILL"), Duration.toMillis(runBudget))
        const code = await exited(child)
        clearTimeout(timer)
        const { stdout, stderr } = output
        const runDir = /(?:HTML report|Run directory): (.+?)(?:\/report\.html)?$/m.exec(stdout)?.[1]
        return { code, stdout, stderr, runDir }
      }),
    ({ child }) => stopChild(child)
  )

/**
 * `testbed run FILE --cluster URL --lock-expiry … --plain --output-dir OUT`, then `extra` (`--require LABEL`, a
 * `--filter`): a run of the tests' own experiments on their cluster, to its end.
 */
export const runOnCluster = (
  file: string,
  url: string,
  out: string,
  extra: ReadonlyArray<string> = [],
  env: Record<string, string> = {}
) =>
  testbed(["run", file, "--cluster", url, "--lock-expiry", lockExpiry, "--plain", "--output-dir", out, ...extra], env)

/** A child process started in the background (a coordinator to kill), with its output so far. */
export const background = (args: ReadonlyArray<string>) => {
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, TESTBED_CLUSTER_SECRET: secret },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout?.on("data", (data) => (output += String(data)))
  child.stderr?.on("data", (data) => (output += String(data)))
  return { child, output: () => output, exited: () => exited(child) }
}

/** `background`, stopped (SIGTERM, then SIGKILL) when the scope closes: a test that fails leaves no coordinator. */
export const backgroundScoped = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => background(args)),
    ({ child }) => stopChild(child)
  )

/** A temporary directory removed when the scope closes. */
export const temporaryDirectory = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** Four tests of half a second each (`exec sleep 0.5`), four at a time, in a directory of the test's scope. */
export const sleepersExperiment = (prefix: string) =>
  Effect.gen(function* () {
    const dir = yield* temporaryDirectory(prefix)
    const file = join(dir, "sleepers.yaml")
    const test = (i: number) => [
      `  - name: t${i}`,
      "    services:",
      '      c: { implementation: exec, role: client, parameters: { program: sleep, args: ["0.5"] } }'
    ]
    writeFileSync(file, ["name: sleepers", "concurrency: 4", "tests:", ...[0, 1, 2, 3].flatMap(test), ""].join("\n"))
    return { file, out: join(dir, "out") }
  })

export interface LoggedEvent {
  readonly type: string
  readonly entityId: string
  readonly data: Record<string, unknown> & { readonly metadata?: Record<string, unknown> }
}

/** The run's events, decoded as the event log's own reader does (a line of a log being written may be cut: only whole lines). */
export const readEvents = (runDir: string): ReadonlyArray<LoggedEvent> => {
  const path = join(runDir, "events.jsonl")
  const text = readFileSync(path, "utf8")
  const events = Result.getOrThrow(EventLog.decodeText(text.slice(0, text.lastIndexOf("\n") + 1), path))
  // The tests look at a few fields of a few event types; the union's types would need a narrowing per use.
  return events as ReadonlyArray<unknown> as ReadonlyArray<LoggedEvent>
}

/** The runner that ran each attempt of each test (from the attempt's first state change). */
export const placements = (events: ReadonlyArray<LoggedEvent>) =>
  events
    .filter((event) => event.type === "test.state_changed" && event.data.to === "SETTING_UP")
    .map((event) => ({ test: event.entityId, runner: String(event.data.metadata?.runner) }))

/** Ports (`:40123`) in a text, as `:PORT`: they differ between any two runs. */
const withoutPorts = (text: string) => text.replace(/:\d+/g, ":PORT")

/**
 * Each artifact the report lists, and whether its file is in the run directory: the list comes from the events, so
 * a file that never arrived went unnoticed. Not their contents: the logs of the echo programs hold a token of the
 * run and how many milliseconds it took, captures and key logs times and keys, all different between any two runs.
 */
const artifactFiles = (runDir: string, artifacts: ReadonlyArray<Record<string, unknown>>) =>
  artifacts.map((artifact) => ({ ...artifact, present: existsSync(join(runDir, String(artifact.path))) }))

/**
 * What a report says about each test, without times, ports and ids (which differ between any two runs), and the
 * artifact files it lists (`artifactFiles`).
 */
export const content = (runDir: string) => {
  const summary = JSON.parse(readFileSync(join(runDir, "experiment_summary.json"), "utf8"))
  const results = summary.tests.results as ReadonlyArray<Record<string, unknown>>
  return {
    status: summary.status,
    matrices: summary.matrices,
    tests: results
      .map((test) => ({
        name: test.name,
        status: test.status,
        participants: test.participants,
        artifacts: artifactFiles(runDir, test.artifacts as ReadonlyArray<Record<string, unknown>>),
        attempts: (test.attempts as ReadonlyArray<Record<string, unknown>>).map((attempt) => ({
          status: attempt.status,
          steps: (attempt.steps as ReadonlyArray<Record<string, unknown>>).map((step) => [step.kind, step.status]),
          assertions: (attempt.assertions as ReadonlyArray<Record<string, unknown>>).map((a) => [
            a.kind,
            a.passed,
            withoutPorts(String(a.message))
          ])
        }))
      }))
      .sort((a, b) => String(a.name).localeCompare(String(b.name)))
  }
}
