// The planning of what a test observes: how often its services' resources are sampled, and the checks of the
// assertions that read those samples or an execution environment's findings.
import { Duration } from "effect"
import type { Assertion, ServiceConfig } from "../ExperimentConfig.ts"

/** Sampling interval when a test asserts on resources but neither the file nor a flag gives one. */
export const defaultInterval: Duration.Duration = Duration.seconds(1)

/**
 * The test's sampling interval: the flag, else the file's `metrics.interval`, else the default when an assertion
 * needs samples; undefined: not sampled.
 */
export const intervalOf = (
  override: Duration.Duration | undefined,
  configured: Duration.Duration | undefined,
  assertions: ReadonlyArray<Assertion>
): Duration.Duration | undefined =>
  override ??
  configured ??
  (assertions.some((assertion) => assertion.type === "resource_below") ? defaultInterval : undefined)

/** Problems of one observing assertion (none for other kinds), as `[path suffix, message]`. */
export const assertionProblems = (
  assertion: Assertion,
  services: ReadonlyArray<readonly [string, string, ServiceConfig]>
): ReadonlyArray<readonly [string, string]> => {
  if (assertion.type === "resource_below") {
    const limits = [assertion.peak_rss, assertion.cpu_time, assertion.threads, assertion.open_files]
    return limits.every((limit) => limit === undefined)
      ? [["", "give at least one limit: peak_rss, cpu_time, threads or open_files"]]
      : []
  }
  if (assertion.type === "memcheck_clean") {
    const target = services.find(([, key]) => key === assertion.service)
    return target !== undefined && target[2].execution?.valgrind !== true
      ? [[".service", `"${assertion.service}" does not run under valgrind (execution: {valgrind: true})`]]
      : []
  }
  return []
}

/** A metrics interval must be longer than zero: a zero interval would read /proc without pause. */
export const intervalProblem = (interval: Duration.Duration | undefined): string | undefined =>
  interval !== undefined && !Duration.isGreaterThan(interval, Duration.zero)
    ? "the metrics interval must be longer than zero"
    : undefined
