// Execution environments of a local service, declared in the file (`execution:`) and wrapped around its command
// without touching its plugin: strace (syscall summary), valgrind memcheck (error count), and limits (a memory
// cgroup for the whole tree, `prlimit --cpu` per process). A tool missing here is reported by `--dry-run`; at run
// time the service then runs without it, with a warning, rather than failing the test.
import { ByteSize, TimeSpan } from "@testbed/events"
import { Programs } from "@testbed/plugins"
import { Duration, Effect, FileSystem, Option, type Scope } from "effect"
import type { Execution } from "../ExperimentConfig.ts"
import type { Attempt, ServiceRuntime } from "./attempt.ts"
import * as ContainerExecution from "./containerExecution.ts"
import * as MemoryCgroup from "./memoryCgroup.ts"
import * as PerfStat from "./perfStat.ts"

export const straceLog = (dir: string): string => `${dir}/strace.txt`
export const valgrindLog = (dir: string): string => `${dir}/valgrind.txt`

/** What a service's execution environment set up: read after it ends, to say which limit ended it. */
export interface Applied {
  readonly cgroup: MemoryCgroup.MemoryCgroup | undefined
  readonly cpuSeconds: number | undefined
  /** The service's own container and the limit set on it (the docker environment). */
  readonly container?: ContainerExecution.ContainerApplied | undefined
}

/** The programs each environment needs. */
const programsOf = (execution: Execution): ReadonlyArray<readonly [string, string]> => [
  ...(execution.strace === true ? [["strace", "strace"] as const] : []),
  ...(execution.valgrind === true ? [["valgrind", "valgrind"] as const] : []),
  ...(execution.limits?.cpu !== undefined ? [["limits.cpu", "prlimit"] as const] : [])
]

/**
 * Why each declared environment cannot run here (empty: all can), e.g. `strace: strace is not installed`. In the
 * docker environment the tools cannot run and the limits are the engine's.
 */
export const unavailable = Effect.fn("Execution.unavailable")(function* (
  execution: Execution | undefined,
  environment = "localhost"
) {
  if (execution === undefined) return []
  if (environment === "docker") return [...ContainerExecution.unsupported(execution)]
  const reasons = programsOf(execution).flatMap(([what, program]) =>
    Programs.onPath(program) ? [] : [`${what}: ${program} is not installed (not on PATH)`]
  )
  if (execution.perf === true && Programs.onPath("perf")) {
    const reason = yield* PerfStat.unavailable()
    if (reason !== undefined) reasons.push(`perf: ${reason}`)
  }
  if (execution.limits?.memory !== undefined) {
    const reason = yield* MemoryCgroup.unavailable()
    if (reason !== undefined) reasons.push(`limits.memory: ${reason}`)
  }
  return reasons
})

/** Whole seconds of a CPU limit, at least one (RLIMIT_CPU counts seconds). */
const cpuSecondsOf = (cpu: Duration.Duration): number => Math.max(1, Math.ceil(Duration.toSeconds(cpu)))

/** The argv with each available environment around it: cgroup outermost (so every tool is inside), then prlimit… */
const wrapArgv = (
  argv: ReadonlyArray<string>,
  execution: Execution,
  dir: string,
  applied: Applied,
  missing: ReadonlySet<string>
): ReadonlyArray<string> => {
  let wrapped = argv
  if (execution.valgrind === true && !missing.has("valgrind")) {
    wrapped = ["valgrind", "--tool=memcheck", "--leak-check=full", `--log-file=${valgrindLog(dir)}`, ...wrapped]
  }
  if (execution.perf === true && !missing.has("perf")) wrapped = PerfStat.around(wrapped, PerfStat.logOf(dir))
  if (execution.strace === true && !missing.has("strace")) {
    wrapped = ["strace", "-f", "-c", "-o", straceLog(dir), "--", ...wrapped]
  }
  if (applied.cpuSeconds !== undefined) wrapped = ["prlimit", `--cpu=${applied.cpuSeconds}`, "--", ...wrapped]
  if (applied.cgroup !== undefined) {
    // The wrapper joins the group, then becomes the service: no shell stays around, and nothing is interpolated.
    wrapped = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', applied.cgroup.procsFile, ...wrapped]
  }
  return wrapped
}

/**
 * The service's command inside its execution environment, with what was applied. An environment that cannot run
 * here is left out with a warning; the memory cgroup is created in `scope` and removed when it closes.
 */
export const apply = Effect.fn("Execution.apply")(function* (
  attempt: Attempt,
  runtime: ServiceRuntime,
  scope: Scope.Scope
) {
  const execution = runtime.plan.execution
  const command = runtime.command!
  if (execution === undefined) return { command, applied: undefined }
  const container = attempt.environment.containerOf?.(runtime.plan.key)
  if (container !== undefined) return yield* inContainer(runtime, execution, container)
  if (attempt.environment.kind !== "localhost") {
    yield* Effect.logWarning(
      `${runtime.id}: execution environments run on localhost only, not ${attempt.environment.kind}`
    )
    return { command, applied: undefined }
  }
  const reasons = yield* unavailable(execution)
  for (const reason of reasons) yield* Effect.logWarning(`${runtime.id}: ${reason}: running without it`)
  const missing = new Set(programsOf(execution).flatMap(([, program]) => (Programs.onPath(program) ? [] : [program])))
  if (reasons.some((reason) => reason.startsWith("perf:"))) missing.add("perf")
  const memory = execution.limits?.memory
  const cgroup =
    memory === undefined
      ? undefined
      : yield* MemoryCgroup.make(`${attempt.test.slug}-${attempt.number}-${runtime.plan.key}`, memory, scope).pipe(
          Effect.catch((reason) => Effect.as(Effect.logWarning(`${runtime.id}: no memory limit: ${reason}`), undefined))
        )
  const cpu = execution.limits?.cpu
  const applied: Applied = {
    cgroup,
    cpuSeconds: cpu === undefined || missing.has("prlimit") ? undefined : cpuSecondsOf(cpu)
  }
  const argv =
    command.shell !== undefined ? ["sh", "-c", command.shell] : [command.program ?? "", ...(command.args ?? [])]
  const [program, ...args] = wrapArgv(argv, execution, runtime.dir, applied, missing)
  const { shell: _shell, ...rest } = command
  return { command: { ...rest, program: program!, args }, applied }
})

/** The command of a service in its own container, under the limits the engine and its shell set. */
const inContainer = Effect.fn("Execution.inContainer")(function* (
  runtime: ServiceRuntime,
  execution: Execution,
  container: string
) {
  const command = runtime.command!
  const applied = yield* ContainerExecution.apply(runtime, execution, container)
  const cpu = execution.limits?.cpu
  if (cpu === undefined) return { command, applied: { cgroup: undefined, cpuSeconds: undefined, container: applied } }
  const cpuSeconds = cpuSecondsOf(cpu)
  const argv =
    command.shell !== undefined ? ["sh", "-c", command.shell] : [command.program ?? "", ...(command.args ?? [])]
  const [program, ...args] = ContainerExecution.underCpuLimit(argv, cpuSeconds)
  const { shell: _shell, ...rest } = command
  return {
    command: { ...rest, program: program!, args },
    applied: { cgroup: undefined, cpuSeconds, container: applied }
  }
})

// `docker exec` reports a process a signal ended as exit code 128 + the signal's number.
const execSignals: Readonly<Record<number, string>> = { 137: "SIGKILL", 152: "SIGXCPU" }

/** `its memory limit (64.0 MB)` when a limit ended the service, else undefined. */
export const limitThatKilled = Effect.fn("Execution.limitThatKilled")(function* (
  applied: Applied | undefined,
  ended: { readonly exitCode: number | null; readonly signal: string | null }
) {
  if (applied === undefined) return undefined
  const signal =
    ended.signal ??
    (applied.container !== undefined && ended.exitCode !== null ? execSignals[ended.exitCode] : undefined)
  if (signal === undefined) return undefined
  if (applied.container?.memoryBytes !== undefined) {
    if (yield* ContainerExecution.memoryLimitKilled(applied.container, signal === "SIGKILL")) {
      return `its memory limit (${ByteSize.format(applied.container.memoryBytes)})`
    }
  }
  if (applied.cgroup !== undefined && signal === "SIGKILL" && (yield* applied.cgroup.oomKilled)) {
    return `its memory limit (${ByteSize.format(applied.cgroup.limitBytes)})`
  }
  if (applied.cpuSeconds !== undefined && (signal === "SIGXCPU" || signal === "SIGKILL")) {
    return `its CPU time limit (${TimeSpan.format(Duration.seconds(applied.cpuSeconds))})`
  }
  return undefined
})

/** The exit as reported: with the limit that killed the process, when one did. */
export const withLimit = Effect.fn("Execution.withLimit")(function* <
  Ended extends { readonly exitCode: number | null; readonly signal: string | null }
>(applied: Applied | undefined, ended: Ended) {
  const limit = yield* limitThatKilled(applied, ended)
  const exit: Ended & { readonly limit?: string } = limit === undefined ? ended : { ...ended, limit }
  return exit
})

/** The error count of valgrind's last `ERROR SUMMARY` line, or undefined when it wrote none. */
export const memcheckErrors = (log: string): number | undefined => {
  const all = [...log.matchAll(/ERROR SUMMARY: (\d+) errors?/g)]
  const last = all[all.length - 1]
  return last === undefined ? undefined : Number(last[1])
}

export interface SyscallSummary {
  readonly calls: number
  readonly errors: number
  /** The most called syscalls, most first (at most 5). */
  readonly top: ReadonlyArray<{ readonly syscall: string; readonly calls: number; readonly errors: number }>
}

/** Parses `strace -c` output (`% time seconds usecs/call calls errors syscall` rows, then `total`). */
export const parseStrace = (text: string): SyscallSummary | undefined => {
  const rows = text
    .split("\n")
    .slice(0, 1000)
    .map((line) => line.trim().split(/\s+/))
    .filter((cells) => cells.length >= 5 && /^\d+\.\d+$/.test(cells[0]!))
    .map((cells) => {
      // The errors column is blank when there were none: 5 cells, else 6.
      const syscall = cells[cells.length - 1]!
      const calls = Number(cells[3])
      const errors = cells.length >= 6 ? Number(cells[4]) : 0
      return { syscall, calls, errors }
    })
  const total = rows.find((row) => row.syscall === "total")
  if (total === undefined) return undefined
  const top = rows
    .filter((row) => row.syscall !== "total")
    .sort((a, b) => b.calls - a.calls)
    .slice(0, 5)
  return { calls: total.calls, errors: total.errors, top }
}

/** `144 syscalls (19 failed); most: mmap 30, close 23, read 7`: the artifact's description. */
export const describeStrace = (summary: SyscallSummary): string =>
  `${summary.calls} syscalls (${summary.errors} failed); most: ${summary.top.map((row) => `${row.syscall} ${row.calls}`).join(", ")}`

/** Each tool's log, and how its text is described (undefined: nothing to say, e.g. the tool never wrote it). */
const toolLogs = (runtime: ServiceRuntime) => {
  const execution = runtime.plan.execution
  return [
    execution?.strace === true && {
      name: "strace",
      path: straceLog(runtime.dir),
      describe: (text: string) => {
        const summary = parseStrace(text)
        return summary === undefined ? undefined : describeStrace(summary)
      }
    },
    execution?.valgrind === true && {
      name: "memcheck",
      path: valgrindLog(runtime.dir),
      describe: (text: string) => {
        const errors = memcheckErrors(text)
        return errors === undefined ? undefined : `valgrind memcheck: ${errors} error(s)`
      }
    },
    execution?.perf === true && {
      name: "perf stat",
      path: PerfStat.logOf(runtime.dir),
      describe: (text: string) => {
        const counters = PerfStat.parse(text)
        return counters.length === 0 ? undefined : PerfStat.describe(counters)
      }
    }
  ].filter((tool) => tool !== false)
}

/** The files its tools wrote, as artifacts: the strace summary described by its figures, the memcheck report. */
export const artifactsOf = Effect.fn("Execution.artifactsOf")(function* (runtime: ServiceRuntime) {
  const fs = yield* FileSystem.FileSystem
  const found: Array<{ name: string; kind: "profile"; path: string; description?: string }> = []
  for (const tool of toolLogs(runtime)) {
    const text = yield* fs.readFileString(tool.path).pipe(Effect.option)
    const description = Option.isSome(text) ? tool.describe(text.value) : undefined
    found.push({
      name: `${runtime.plan.key} ${tool.name}`,
      kind: "profile",
      path: tool.path,
      ...(description === undefined ? {} : { description })
    })
  }
  return found
})
