/**
 * `junit.xml` as CI servers read it (the Ant/Surefire/Jenkins dialect): one testsuite per run, one testcase per
 * test. failed → `<failure>`; timeout and interrupted → `<error>`; skipped and unsupported → `<skipped>`; earlier
 * failed attempts → `<rerunFailure>`/`<rerunError>`, or `<flakyFailure>`/`<flakyError>` when the test passed in
 * the end. A failure's body carries its message and the tails of the logs that explain it (the failed step's
 * output, the output an assertion read); `<system-out>` lists the logs and artifacts by path with the tails of
 * the stdout logs, `<system-err>` the tails of the stderr logs.
 */
import { concat } from "./internal/chunks.ts"
import { attr, seconds, text } from "./internal/escape.ts"
import * as Tails from "./internal/tails.ts"
import type { Attempt, ExperimentSummary, TestResult } from "./ExperimentSummary.ts"

export const fileName = "junit.xml"

const attributes = (attrs: ReadonlyArray<readonly [string, string | number | null]>) =>
  attrs
    .filter((pair): pair is readonly [string, string | number] => pair[1] !== null)
    .map(([k, v]) => ` ${k}="${attr(String(v))}"`)
    .join("")

const element = (name: string, attrs: ReadonlyArray<readonly [string, string | number | null]>, body?: string) => {
  const a = attributes(attrs)
  return body === undefined ? `<${name}${a}/>` : `<${name}${a}>${body}</${name}>`
}

/** A failure's text: its message, then the tails of the logs that explain it. */
const explained = (message: string, a: Attempt | undefined): string => {
  const tails = a === undefined ? [] : Tails.split(a).primary
  return tails.length === 0 ? message : `${message}\n\n${Tails.plain(tails)}`
}

/** `<system-out>` (the lines given, then the stdout tails) and `<system-err>` (the stderr tails), when not empty. */
const streams = (a: Attempt | undefined, head: ReadonlyArray<string>): ReadonlyArray<string> => {
  const stdout = a === undefined ? "" : Tails.plain(Tails.ofStream(a, ["stdout", "log"]))
  const stderr = a === undefined ? "" : Tails.plain(Tails.ofStream(a, ["stderr"]))
  const out = [...head, stdout].filter((p) => p !== "").join("\n")
  return [
    ...(out === "" ? [] : [`<system-out>${text(out)}</system-out>`]),
    ...(stderr === "" ? [] : [`<system-err>${text(stderr)}</system-err>`])
  ]
}

/** An earlier attempt that did not pass, as a rerun (test failed in the end) or flaky (test passed) element. */
const rerun = (a: Attempt, flaky: boolean): string | null => {
  if (a.status === "passed" || a.status === "skipped" || a.status === "unsupported") return null
  const kind = a.status === "failed" ? "Failure" : "Error"
  const name = `${flaky ? "flaky" : "rerun"}${kind}`
  const message = a.error_message ?? a.status
  const out = [`attempt ${a.attempt}: ${a.status} after ${seconds(a.duration_ms / 1000)} s`]
  if (a.logs_path !== null) out.push(`logs: ${a.logs_path}`)
  return element(
    name,
    [
      ["message", message],
      ["type", a.status]
    ],
    `<stackTrace>${text(explained(message, a))}</stackTrace>${streams(a, out).join("")}`
  )
}

const references = (t: TestResult): Array<string> => {
  const lines: Array<string> = []
  if (t.logs_path !== null) lines.push(`logs: ${t.logs_path}`)
  for (const step of t.attempts[t.attempts.length - 1]?.steps ?? []) {
    for (const path of step.logs) lines.push(`step ${step.index} ${step.status}: ${path}`)
  }
  for (const a of t.artifacts) lines.push(`${a.kind}: ${a.path}${a.service === null ? "" : ` (${a.service})`}`)
  for (const p of t.participants) {
    lines.push(
      `participant: ${p.service} = ${p.implementation}${p.version === null ? "" : ` ${p.version}`} (${p.type})`
    )
  }
  if (t.retries > 0) lines.push(`attempts: ${t.attempts.length}`)
  return lines
}

/** The test's logs and artifacts by path, with the tails of its final attempt's logs. */
const systemOutAndErr = (t: TestResult): string =>
  streams(t.attempts[t.attempts.length - 1], references(t))
    .map((p) => `\n      ${p}`)
    .join("")

const verdict = (t: TestResult): string => {
  const message = t.error_message ?? t.status
  switch (t.status) {
    case "failed":
      return element(
        "failure",
        [
          ["message", message],
          ["type", "failed"]
        ],
        text(explained(message, Tails.failedAttempt(t)))
      )
    case "timeout":
    case "interrupted":
      return element(
        "error",
        [
          ["message", message],
          ["type", t.status]
        ],
        text(explained(message, Tails.failedAttempt(t)))
      )
    case "unschedulable":
    case "runner_lost":
      // Not a failure of the implementation under test: the cluster could not run it (JUnit's "error").
      return element("error", [
        ["message", message],
        ["type", t.status]
      ])
    case "skipped":
      return element("skipped", [["message", message]])
    case "unsupported": {
      const by = t.unsupported_by.length === 0 ? "" : ` by ${t.unsupported_by.join(", ")}`
      return element("skipped", [
        ["message", `unsupported${by}${t.error_message === null ? "" : `: ${t.error_message}`}`],
        ["type", "unsupported"]
      ])
    }
    default:
      return ""
  }
}

const testcase = (t: TestResult, suite: string): string => {
  const flaky = t.status === "flaky"
  const earlier = t.attempts.slice(0, flaky ? t.attempts.length : Math.max(0, t.attempts.length - 1))
  const parts = [verdict(t), ...earlier.map((a) => rerun(a, flaky))].filter((p): p is string => p !== null && p !== "")
  const body = parts.map((p) => `\n      ${p}`).join("") + systemOutAndErr(t)
  return element(
    "testcase",
    [
      ["name", t.name],
      ["classname", t.matrix === null ? suite : `${suite}.${t.matrix.row}`],
      ["time", seconds(t.duration)]
    ],
    body === "" ? undefined : `${body}\n    `
  )
}

/** The document in pieces, one testcase each: a run of any size is written without one huge string. */
export function* chunks(s: ExperimentSummary): Generator<string> {
  const suite = s.experiment_name ?? s.experiment_id
  const failures = s.tests.failed
  const errors = s.tests.timeout + s.tests.interrupted
  const skipped = s.tests.skipped + s.tests.unsupported
  const properties: ReadonlyArray<readonly [string, string | null]> = [
    ["experiment_id", s.experiment_id],
    ["status", s.status],
    ["configuration_file", s.configuration_file],
    ["success_rate", s.tests.success_rate.toFixed(2)],
    ["flaky", String(s.tests.flaky)],
    ["unsupported", String(s.tests.unsupported)],
    ["generated_at", s.report_metadata.generated_at]
  ]
  const props = properties
    .filter((p): p is readonly [string, string] => p[1] !== null)
    .map(
      ([k, v]) =>
        `\n      ${element("property", [
          ["name", `testbed.${k}`],
          ["value", v]
        ])}`
    )
    .join("")
  const time = seconds(s.duration_seconds)
  const root = attributes([
    ["name", suite],
    ["tests", s.tests.total],
    ["failures", failures],
    ["errors", errors],
    ["time", time]
  ])
  const testsuite = attributes([
    ["name", suite],
    ["tests", s.tests.total],
    ["failures", failures],
    ["errors", errors],
    ["skipped", skipped],
    ["time", time],
    ["timestamp", s.start_time],
    ["id", s.experiment_id]
  ])
  yield `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites${root}>\n  <testsuite${testsuite}>\n    <properties>${props}\n    </properties>`
  for (const t of s.tests.results) yield `\n    ${testcase(t, suite)}`
  yield "\n  </testsuite>\n</testsuites>\n"
}

export const render = (s: ExperimentSummary): string => concat(chunks(s))
