// `perf stat` around a local service: the kernel's counters of its whole run (task clock, context switches, CPU
// migrations, page faults, and the hardware counters where the machine exposes them) written as CSV to `perf.txt`
// in its directory. Whether it can run is decided by the kernel: `perf_event_paranoid` above 2 refuses users that
// are not root, and a kernel without perf events has no such file.
import { Effect, FileSystem } from "effect"

export const logOf = (dir: string): string => `${dir}/perf.txt`

/** The argv under `perf stat`, its CSV report to `log` (its own output is left to the service). */
export const around = (argv: ReadonlyArray<string>, log: string): ReadonlyArray<string> => [
  "perf",
  "stat",
  "-x,",
  "-o",
  log,
  "--",
  ...argv
]

/** Why perf events cannot be counted here, or undefined when they can (root, or `perf_event_paranoid` ≤ 2). */
export const unavailable = Effect.fn("PerfStat.unavailable")(function* () {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs.readFileString("/proc/sys/kernel/perf_event_paranoid").pipe(Effect.option)
  if (text._tag === "None") return "the kernel has no perf events (no /proc/sys/kernel/perf_event_paranoid)"
  const level = Number(text.value.trim())
  if (level > 2 && process.getuid?.() !== 0) {
    return `kernel.perf_event_paranoid is ${level}: perf events are refused to users other than root`
  }
  return undefined
})

export interface Counter {
  readonly event: string
  /** undefined: the machine does not count it (`<not supported>`, `<not counted>`). */
  readonly value: number | undefined
  readonly unit: string
}

/** Parses `perf stat -x,` output: `value,unit,event,…` lines, comments (`#`) and blank lines skipped. */
export const parse = (text: string): ReadonlyArray<Counter> =>
  text
    .split("\n")
    .slice(0, 200)
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => line.split(","))
    .filter((cells) => cells.length >= 3 && cells[2] !== "")
    .map((cells) => {
      const value = Number(cells[0])
      return { event: cells[2]!, value: Number.isFinite(value) ? value : undefined, unit: cells[1] ?? "" }
    })

/** `task-clock 0.7 msec, context-switches 1, page-faults 50 (not counted here: cycles, instructions)`. */
export const describe = (counters: ReadonlyArray<Counter>): string => {
  const counted = counters.filter((counter) => counter.value !== undefined)
  const missing = counters.filter((counter) => counter.value === undefined).map((counter) => counter.event)
  const text = counted
    .map((counter) => `${counter.event} ${counter.value}${counter.unit === "" ? "" : ` ${counter.unit}`}`)
    .join(", ")
  return missing.length === 0 ? text : `${text} (not counted here: ${missing.join(", ")})`
}
