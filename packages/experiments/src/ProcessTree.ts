/**
 * What a local process tree uses, read from Linux's `/proc`: CPU time, resident memory (now and its high-water
 * mark), processes, threads, open files and storage I/O of a service's root process and every descendant. A
 * process that ends while it is read is left out, never an error: the tree is a moving target.
 */
import { readdirSync, readFileSync } from "node:fs"
import { Effect, Option, Result } from "effect"

/** One process, as `/proc/PID/{stat,status,io,fd}` describe it. */
export interface ProcessReading {
  readonly pid: number
  /** utime + stime, in clock ticks. */
  readonly cpuTicks: number
  /** cutime + cstime: CPU of its children that ended and were waited for. */
  readonly childTicks: number
  readonly rssBytes: number
  /** VmHWM: the highest resident memory of this process since it started. */
  readonly hwmBytes: number
  readonly threads: number
  readonly openFiles: number
  readonly readBytes: number
  readonly writeBytes: number
}

/** The tree's sums (and its largest high-water mark). */
export interface TreeReading {
  readonly processes: number
  readonly cpuMs: number
  readonly rssBytes: number
  readonly maxHwmBytes: number
  readonly threads: number
  readonly openFiles: number
  readonly readBytes: number
  readonly writeBytes: number
}

// USER_HZ is 100 on every Linux architecture user space sees (the kernel converts for /proc): ticks are 10 ms.
const msPerTick = 10
/** A tree larger than this is read up to here: a fork bomb must not make every sample slower than the last. */
export const maxProcesses = 2000

const statusField = (status: string, name: string): number => {
  const match = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)
  return match === null ? 0 : Number(match[1])
}

/** Fields after `(comm)` in /proc/PID/stat; comm may hold spaces and parentheses, so split after the last `)`. */
const statFields = (stat: string): ReadonlyArray<string> => stat.slice(stat.lastIndexOf(")") + 2).split(" ")

/** Parses one process's files; exported for tests of the parsing alone. */
export const parseProcess = (
  pid: number,
  stat: string,
  status: string,
  io: string,
  openFiles: number
): ProcessReading => {
  // stat field 3 (state) is index 0 here: utime is field 14, stime 15, cutime 16, cstime 17, num_threads 20.
  const fields = statFields(stat)
  const number = (index: number) => Number(fields[index] ?? 0) || 0
  return {
    pid,
    cpuTicks: number(11) + number(12),
    childTicks: number(13) + number(14),
    rssBytes: statusField(status, "VmRSS") * 1024,
    hwmBytes: statusField(status, "VmHWM") * 1024,
    threads: statusField(status, "Threads") || number(17),
    openFiles,
    readBytes: statusField(io, "read_bytes"),
    writeBytes: statusField(io, "write_bytes")
  }
}

// /proc files are made by the kernel on read, never wait on a disk: read synchronously. Through the thread pool, a
// node process (a dozen threads, each with a `children` file) took ~11 ms per reading on a loaded 2-core machine.
const readText = (file: string): string | undefined =>
  Result.getOrUndefined(Result.try({ try: () => readFileSync(file, "latin1"), catch: () => undefined }))

const list = (dir: string): ReadonlyArray<string> =>
  Result.getOrElse(Result.try({ try: () => readdirSync(dir), catch: () => [] as Array<string> }), () => [])

/** One process, or undefined when it has ended (or is a zombie with nothing left to read). */
export const readProcess = (pid: number): ProcessReading | undefined => {
  const stat = readText(`/proc/${pid}/stat`)
  if (stat === undefined) return undefined
  // io is readable only by the process's owner (or root): 0 otherwise.
  return parseProcess(
    pid,
    stat,
    readText(`/proc/${pid}/status`) ?? "",
    readText(`/proc/${pid}/io`) ?? "",
    list(`/proc/${pid}/fd`).length
  )
}

/** The direct children of a process, from every one of its threads (a child may be forked by any thread). */
export const childrenOf = (pid: number): ReadonlyArray<number> =>
  list(`/proc/${pid}/task`).flatMap((task) =>
    (readText(`/proc/${pid}/task/${task}/children`) ?? "")
      .split(" ")
      .filter((word) => word !== "")
      .map(Number)
  )

const sum = (readings: ReadonlyArray<ProcessReading>, field: keyof ProcessReading): number =>
  readings.reduce((total, reading) => total + reading[field], 0)

/** The root and every descendant, read breadth first; None when the root itself has ended. */
export const read = (root: number): Effect.Effect<Option.Option<TreeReading>> => Effect.sync(() => readTree(root))

const readTree = (root: number): Option.Option<TreeReading> => {
  const readings: Array<ProcessReading> = []
  const seen = new Set<number>()
  let level: ReadonlyArray<number> = [root]
  while (level.length > 0 && readings.length < maxProcesses) {
    const fresh = level.filter((pid) => !seen.has(pid)).slice(0, maxProcesses - readings.length)
    for (const pid of fresh) seen.add(pid)
    const alive = fresh.flatMap((pid) => {
      const reading = readProcess(pid)
      return reading === undefined ? [] : [reading]
    })
    readings.push(...alive)
    level = alive.flatMap((reading) => childrenOf(reading.pid))
  }
  if (readings[0]?.pid !== root) return Option.none<TreeReading>()
  return Option.some<TreeReading>({
    processes: readings.length,
    // Ended children that were waited for count through their parent's cutime/cstime; live ones are in the tree.
    cpuMs: (sum(readings, "cpuTicks") + sum(readings, "childTicks")) * msPerTick,
    rssBytes: sum(readings, "rssBytes"),
    maxHwmBytes: Math.max(...readings.map((reading) => reading.hwmBytes)),
    threads: sum(readings, "threads"),
    openFiles: sum(readings, "openFiles"),
    readBytes: sum(readings, "readBytes"),
    writeBytes: sum(readings, "writeBytes")
  })
}
