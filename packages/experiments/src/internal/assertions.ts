// Assertions checked after the steps: the ones the experiment declares, then the implicit one that every task
// service (a client) ended with exit code 0 unless an exit_code assertion speaks for it. Each publishes
// assertion.checked; the attempt fails with the first failure's message.
import { EventBus } from "@testbed/events"
import { Problems, ServiceCommand } from "@testbed/plugins"
import { Duration, Effect, FileSystem, Path } from "effect"
import type { PlannedAssertion } from "../Plan.ts"
import * as Replay from "../Replay.ts"
import * as Render from "./render.ts"
import { type Attempt, describeExit, hostOf } from "./attempt.ts"
import * as ObserveAssertions from "./observeAssertions.ts"
import * as Output from "./output.ts"
import { httpStatus, pollUntil, tcpOpen } from "./probe.ts"

interface Verdict {
  readonly passed: boolean
  readonly message: string
}

/** The log files an output assertion reads, or undefined when its service or step did not run. */
const logsOf = (
  attempt: Attempt,
  target: { readonly service?: string; readonly step?: string },
  stream: "stdout" | "stderr" | "any"
): ReadonlyArray<string> | undefined => {
  const paths =
    target.step !== undefined
      ? attempt.steps.get(target.step)
      : target.service !== undefined
        ? attempt.services.get(target.service)
        : undefined
  if (paths === undefined) return undefined
  return stream === "stdout"
    ? [paths.stdoutPath]
    : stream === "stderr"
      ? [paths.stderrPath]
      : [paths.stdoutPath, paths.stderrPath]
}

/** Matched log by log, each within its bounded window (`Output.window`), in linear time (`Pattern`). */
const matchesAny = (logs: ReadonlyArray<string>, pattern: PlannedAssertion & { readonly type: "output_matches" }) =>
  Effect.map(
    Effect.forEach(logs, (log) => Output.matches(log, pattern.matcher)),
    (found) => found.some((matched) => matched)
  )

type Of<T extends PlannedAssertion["type"]> = Extract<PlannedAssertion, { readonly type: T }>

const subjectOf = (assertion: { readonly step?: string | undefined; readonly service?: string | undefined }) =>
  assertion.step !== undefined ? `step ${assertion.step}` : `service ${assertion.service}`

const exitCode = (attempt: Attempt, assertion: Of<"exit_code">): Verdict => {
  const expected = assertion.equals ?? 0
  const subject = subjectOf(assertion)
  const ended =
    assertion.step !== undefined
      ? attempt.steps.get(assertion.step)
      : assertion.service !== undefined
        ? attempt.services.get(assertion.service)?.exit
        : undefined
  if (ended === undefined) return { passed: false, message: `${subject} has not ended` }
  const passed = ended.signal === null && ended.exitCode === expected
  return { passed, message: `${subject}: ${describeExit(ended)} (expected ${expected})` }
}

const outputMatches = Effect.fn("Assertions.outputMatches")(function* (
  attempt: Attempt,
  assertion: Of<"output_matches">
) {
  const stream = assertion.stream ?? "any"
  const subject = subjectOf(assertion)
  const logs = logsOf(attempt, assertion, stream)
  if (logs === undefined) return { passed: false, message: `${subject} produced no output (it did not run)` }
  const running = assertion.service !== undefined && attempt.services.get(assertion.service)?.exit === undefined
  // A running service's output reaches its log file a moment after it was written: give it that moment.
  const passed =
    (yield* matchesAny(logs, assertion)) ||
    (running && (yield* pollUntil(matchesAny(logs, assertion), Duration.seconds(2), "200 millis")))
  const verdict = `${subject} ${stream === "any" ? "output" : stream} ${passed ? "matches" : "does not match"} /${assertion.pattern}/`
  if (passed) return { passed, message: verdict }
  // The evidence: what the program did say last, so a failure reads without opening its log.
  const said = (yield* Effect.forEach(logs, Output.lastLines)).flat()
  const quoted = Problems.sanitize(said.join(" | ")).slice(0, 400)
  return { passed, message: said.length === 0 ? `${verdict} (no output)` : `${verdict} (last lines: ${quoted})` }
})

const serviceResponsive = Effect.fn("Assertions.serviceResponsive")(function* (
  attempt: Attempt,
  assertion: Of<"service_responsive">
) {
  const runtime = attempt.services.get(assertion.service)
  const protocol = assertion.protocol ?? "tcp"
  if (runtime?.port === undefined) return { passed: false, message: `service ${assertion.service} has no port` }
  if (runtime.exit !== undefined) {
    return { passed: false, message: `service ${assertion.service} is not running (${describeExit(runtime.exit)})` }
  }
  const timeout = assertion.timeout ?? Duration.seconds(5)
  const host = hostOf(attempt, assertion.service)
  const where = `${host}:${runtime.port}`
  if (protocol === "tcp") {
    const open = yield* pollUntil(tcpOpen(host, runtime.port, 500), timeout, "100 millis")
    return {
      passed: open,
      message: `service ${assertion.service} ${open ? "accepts" : "refuses"} TCP connections on ${where}`
    }
  }
  const route = assertion.path ?? "/"
  let status: number | undefined
  const answered = yield* pollUntil(
    Effect.map(httpStatus(host, runtime.port, route, 1000), (code) => {
      status = code
      return code !== undefined && code < 500
    }),
    timeout,
    "100 millis"
  )
  return {
    passed: answered,
    message: `GET http://${where}${route}: ${status === undefined ? "no answer" : `status ${status}`}`
  }
})

const replayPassed = Effect.fn("Assertions.replayPassed")(function* (attempt: Attempt, assertion: Of<"replay_passed">) {
  const path = yield* Path.Path
  const outcome =
    assertion.step !== undefined
      ? (attempt.replays.get(assertion.step) ?? `step ${assertion.step} did not run`)
      : yield* Replay.readOutcome(path.join(attempt.services.get(assertion.service!)!.dir, Replay.outcomeFile))
  const subject = subjectOf(assertion)
  if (typeof outcome === "string") return { passed: false, message: `${subject}: ${outcome}` }
  return { passed: outcome.passed, message: `${subject}: ${Replay.describe(outcome)}` }
})

const fileExists = Effect.fn("Assertions.fileExists")(function* (attempt: Attempt, assertion: Of<"file_exists">) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const rendered = yield* Render.orFailed(
    ServiceCommand.renderText(assertion.path, { ...attempt.variables, test_dir: attempt.dir })
  )
  if (rendered instanceof ServiceCommand.TemplateFailed) return { passed: false, message: rendered.reason }
  const file = path.resolve(attempt.dir, rendered)
  const exists = yield* fs.exists(file).pipe(Effect.orElseSucceed(() => false))
  return { passed: exists, message: `${path.relative(attempt.runDir, file)} ${exists ? "exists" : "does not exist"}` }
})

const check = (attempt: Attempt, assertion: PlannedAssertion) => {
  switch (assertion.type) {
    case "exit_code":
      return Effect.succeed(exitCode(attempt, assertion))
    case "output_matches":
      return outputMatches(attempt, assertion)
    case "service_responsive":
      return serviceResponsive(attempt, assertion)
    case "replay_passed":
      return replayPassed(attempt, assertion)
    case "resource_below":
      return ObserveAssertions.resourceBelow(attempt, assertion)
    case "memcheck_clean":
      return ObserveAssertions.memcheckClean(attempt, assertion)
    case "file_exists":
      return fileExists(attempt, assertion)
  }
}

/** Checks everything; returns the failures' messages (empty when all passed). */
export const checkAll = Effect.fn("Assertions.checkAll")(function* (
  attempt: Attempt,
  assertions: ReadonlyArray<PlannedAssertion>,
  stopAtFirstFailure: boolean
) {
  const failures: Array<string> = []
  const publish = (index: number, kind: string, verdict: Verdict) =>
    EventBus.emit({
      type: "assertion.checked",
      entityId: `${attempt.test.name}/assertion/${index}`,
      data: { test: attempt.test.name, index, kind, passed: verdict.passed, message: verdict.message }
    })
  for (const [index, assertion] of assertions.entries()) {
    const verdict: Verdict = yield* check(attempt, assertion)
    yield* publish(index, assertion.type, verdict)
    if (!verdict.passed) {
      failures.push(verdict.message)
      if (stopAtFirstFailure) return failures
    }
  }
  const spokenFor = new Set(
    assertions.flatMap((assertion) =>
      assertion.type === "exit_code" && assertion.service !== undefined ? [assertion.service] : []
    )
  )
  let index = assertions.length
  for (const runtime of attempt.services.values()) {
    if (runtime.plan.lifetime !== "task" || spokenFor.has(runtime.plan.key) || runtime.exit === undefined) continue
    const { exitCode, signal } = runtime.exit
    const passed = signal === null && exitCode === 0
    const verdict = {
      passed,
      message: `${runtime.plan.key} (${runtime.plan.plugin.name}) ended with ${describeExit(runtime.exit)}`
    }
    yield* publish(index++, "task_exit_code", verdict)
    if (!passed) {
      failures.push(verdict.message)
      if (stopAtFirstFailure) return failures
    }
  }
  return failures
})
