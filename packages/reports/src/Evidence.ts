/**
 * The evidence of a failure, read from the run directory after the fold: for each attempt that did not pass, the
 * output files of its failed steps, the files its failed output assertions read, and the tails of its logs. The
 * event log names the service logs (`test.artifact`) and each attempt's directory (`logsPath`); a step's files are
 * found in `<logsPath>/steps/` under the step's name (which the step events do not carry: see the README).
 * Everything is bounded: files per attempt, bytes and lines per tail, attempts per test, tests per run.
 */
import { Effect, Option } from "effect"
import {
  type ArtifactRef,
  type AssertionResult,
  type Attempt,
  type ExperimentSummary,
  isFailure,
  type LogTail,
  type StepResult,
  type TestResult
} from "./ExperimentSummary.ts"
import { listDirectory, type RunRoot, readTail, runRoot } from "./internal/runFiles.ts"

/** The most of one log a report shows: its last `tailBytes` bytes, and of those its last `tailLines` lines. */
export const tailBytes = 4096
export const tailLines = 40
/** Log tails kept per attempt (the failed step's and assertion's files first, then the services' logs). */
export const filesPerAttempt = 8
/** Attempts of one test that get evidence: the last ones that did not pass. */
export const attemptsPerTest = 2
/** Tests that get evidence, in the order they were declared: a run with more failures gets links only past it. */
export const testLimit = 1000
/** Names read from one attempt's `steps/` directory. */
const stepFileLimit = 1000

const stepSuffixes = [".stdout.log", ".stderr.log", ".log"] as const

/** A step's output files by step name, from the listing of `<logsPath>/steps/`. */
type StepFiles = ReadonlyMap<string, ReadonlyArray<string>>

const stepFilesOf = (dir: string, names: ReadonlyArray<string>): StepFiles => {
  const byStep = new Map<string, Array<string>>()
  for (const name of names) {
    const suffix = stepSuffixes.find((s) => name.endsWith(s) && name.length > s.length)
    if (suffix === undefined) continue
    const step = name.slice(0, -suffix.length)
    const files = byStep.get(step) ?? []
    files.push(`${dir}/${name}`)
    byStep.set(step, files)
  }
  // stdout before stderr before a plain log, whatever the listing order.
  for (const files of byStep.values()) files.sort((a, b) => streamRank(a) - streamRank(b))
  return byStep
}

/** The stream a log file holds, from its name (`stdout.log`, `probe.stderr.log`). */
const streamOf = (path: string): LogTail["stream"] => {
  const base = path.slice(path.lastIndexOf("/") + 1)
  return base.includes("stdout") ? "stdout" : base.includes("stderr") ? "stderr" : "log"
}

const streamRank = (path: string) => ["stdout", "stderr", "log"].indexOf(streamOf(path))

/** Names to match against a message, longest first: `step a b: …` is step `a b`, not step `a`. */
const longestFirst = (names: Iterable<string>): ReadonlyArray<string> => [...names].sort((a, b) => b.length - a.length)

/** `step probe stderr` for `…/steps/probe.stderr.log`. */
const stepFileName = (path: string): string => {
  const base = path.slice(path.lastIndexOf("/") + 1)
  const suffix = stepSuffixes.find((s) => base.endsWith(s)) ?? ""
  return `step ${base.slice(0, base.length - suffix.length)} ${streamOf(path)}`
}

/** The step whose message, description or default name (`step<index>`) names a step that left files. */
const stepName = (step: StepResult, files: StepFiles): string | undefined => {
  const message = step.message ?? ""
  for (const name of longestFirst(files.keys())) {
    if (message.startsWith(`step ${name}:`) || message.startsWith(`step ${name} `)) return name
  }
  return [step.description, `step${step.index}`].find((name) => name !== null && files.has(name)) ?? undefined
}

const withStepLogs = (step: StepResult, files: StepFiles): StepResult => {
  if (step.status === "passed") return step
  const name = stepName(step, files)
  return name === undefined ? step : { ...step, logs: files.get(name) ?? [] }
}

/** Which stream an output assertion read, from its message (`service client stdout does not match /…/`). */
const streamFilter = (rest: string) => (path: string) =>
  rest.startsWith("stdout ")
    ? streamOf(path) === "stdout"
    : rest.startsWith("stderr ")
      ? streamOf(path) === "stderr"
      : true

/** The files a failed output assertion read: its service's logs of this attempt, or its step's files. */
const assertionLogs = (
  assertion: AssertionResult,
  t: TestResult,
  attempt: Attempt,
  files: StepFiles
): ReadonlyArray<string> => {
  const message = assertion.message ?? ""
  const services = new Set([...t.services, ...t.artifacts.flatMap((a) => (a.service === null ? [] : [a.service]))])
  for (const service of longestFirst(services)) {
    const prefix = `service ${service} `
    if (!message.startsWith(prefix)) continue
    const keep = streamFilter(message.slice(prefix.length))
    return serviceLogs(t, attempt)
      .filter((a) => a.service === service && keep(a.path))
      .map((a) => a.path)
  }
  for (const step of longestFirst(files.keys())) {
    const prefix = `step ${step} `
    if (message.startsWith(prefix)) return (files.get(step) ?? []).filter(streamFilter(message.slice(prefix.length)))
  }
  return []
}

const withAssertionLogs = (assertion: AssertionResult, t: TestResult, attempt: Attempt, files: StepFiles) =>
  assertion.passed || assertion.kind !== "output_matches"
    ? assertion
    : { ...assertion, logs: assertionLogs(assertion, t, attempt, files) }

const serviceLogs = (t: TestResult, attempt: Attempt): ReadonlyArray<ArtifactRef> =>
  t.artifacts.filter((a) => a.kind === "log" && (a.attempt === null || a.attempt === attempt.attempt))

interface Candidate {
  readonly name: string
  readonly path: string
  /** Shown even when empty: "the step printed nothing" is evidence. */
  readonly primary: boolean
}

/** The files worth a tail, most telling first, each once. */
const candidates = (t: TestResult, attempt: Attempt): ReadonlyArray<Candidate> => {
  const out = new Map<string, Candidate>()
  const add = (name: string, path: string, primary: boolean) => {
    if (!out.has(path)) out.set(path, { name, path, primary })
  }
  for (const step of attempt.steps) for (const path of step.logs) add(stepFileName(path), path, true)
  const byPath = new Map(t.artifacts.map((a) => [a.path, a.name]))
  for (const assertion of attempt.assertions) {
    for (const path of assertion.logs) add(byPath.get(path) ?? path, path, true)
  }
  for (const artifact of serviceLogs(t, attempt)) add(artifact.name, artifact.path, false)
  return [...out.values()].slice(0, filesPerAttempt)
}

const tailOf = Effect.fn("Evidence.tailOf")(function* (root: RunRoot, candidate: Candidate) {
  const tail = yield* readTail(root, candidate.path, { bytes: tailBytes, lines: tailLines })
  if (Option.isNone(tail) || (tail.value.bytes === 0 && !candidate.primary)) return Option.none<LogTail>()
  return Option.some<LogTail>({
    name: candidate.name,
    path: candidate.path,
    stream: streamOf(candidate.path),
    bytes: tail.value.bytes,
    omitted_bytes: tail.value.omitted,
    text: tail.value.text
  })
})

const attemptEvidence = Effect.fn("Evidence.attemptEvidence")(function* (
  root: RunRoot,
  t: TestResult,
  attempt: Attempt
) {
  const dir = attempt.logs_path === null ? null : `${attempt.logs_path.replace(/\/+$/, "")}/steps`
  const names = dir === null ? [] : yield* listDirectory(root, dir, stepFileLimit)
  const files = dir === null ? new Map<string, ReadonlyArray<string>>() : stepFilesOf(dir, names)
  const steps = attempt.steps.map((step) => withStepLogs(step, files))
  const assertions = attempt.assertions.map((a) => withAssertionLogs(a, t, attempt, files))
  const linked: Attempt = { ...attempt, steps, assertions }
  const tails = yield* Effect.forEach(candidates(t, linked), (c) => tailOf(root, c))
  return { ...linked, log_tails: tails.flatMap((tail) => (Option.isSome(tail) ? [tail.value] : [])) } as Attempt
})

/** Whether a test's report should explain a failure: it failed, timed out, was cut off, or passed after failing. */
export const needsEvidence = (t: TestResult): boolean => isFailure(t.status) || t.status === "flaky"

const testEvidence = Effect.fn("Evidence.testEvidence")(function* (root: RunRoot, t: TestResult) {
  const failed = t.attempts.filter((a) => isFailure(a.status)).slice(-attemptsPerTest)
  const attempts = yield* Effect.forEach(t.attempts, (a) =>
    failed.includes(a) ? attemptEvidence(root, t, a) : Effect.succeed(a)
  )
  return { ...t, attempts } as TestResult
})

/**
 * The summary with the evidence of its failures, read from `runDir` (the directory the event log's paths are
 * relative to). Files that are missing, outside the run directory or unreadable are left out; nothing here fails.
 */
export const attach = Effect.fn("Evidence.attach")(function* (summary: ExperimentSummary, runDir: string) {
  const root = yield* runRoot(runDir)
  if (Option.isNone(root)) return summary
  let left = testLimit
  const results: Array<TestResult> = []
  for (const t of summary.tests.results) {
    if (left > 0 && needsEvidence(t)) {
      left--
      results.push(yield* testEvidence(root.value, t))
    } else results.push(t)
  }
  return { ...summary, tests: { ...summary.tests, results } } as ExperimentSummary
})
