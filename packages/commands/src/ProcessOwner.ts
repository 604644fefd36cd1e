// Which process made a Docker resource or holds a lock, told apart from any other process that ever had the same
// pid: the host name, the kernel's boot id, the pid and the process's start time (clock ticks since boot, from
// /proc/<pid>/stat). A process on this host and boot whose pid is gone or now has another start time is dead;
// one on another host (or in another container's pid namespace, which has another host name) cannot be checked
// from here, so it is never taken for dead.
import { hostname } from "node:os"
import { Effect, FileSystem } from "effect"

export interface Owner {
  readonly host: string
  readonly boot: string
  readonly pid: number
  /** Start time in clock ticks since boot; "" where /proc is not available. */
  readonly start: string
}

export type Liveness = "alive" | "dead" | "elsewhere"

/** `host/boot/pid/start`: the form kept in labels and lock files. */
export const format = (owner: Owner): string => `${owner.host}/${owner.boot}/${owner.pid}/${owner.start}`

export const parse = (text: string): Owner | undefined => {
  const parts = text.split("/")
  if (parts.length !== 4) return undefined
  const [host = "", boot = "", pid = "", start = ""] = parts
  return /^[1-9]\d{0,9}$/.test(pid) && host !== "" ? { host, boot, pid: Number(pid), start } : undefined
}

/** Fields of /proc/<pid>/stat from the third on, split after the command name (which may hold spaces and `)`). */
const fieldsOf = (stat: string): Array<string> => stat.slice(stat.lastIndexOf(")") + 2).split(" ")

/** Field 22: the start time. */
const startOf = (stat: string): string => fieldsOf(stat)[19] ?? ""

/** Field 3: a zombie (Z) or dead (X) process has exited; only its parent has not collected it yet. */
const exited = (stat: string): boolean => /^[ZX]$/.test(fieldsOf(stat)[0] ?? "")

const readOr = (fs: FileSystem.FileSystem, file: string) =>
  fs.readFileString(file).pipe(
    Effect.map((text) => text.trim()),
    Effect.orElseSucceed(() => undefined)
  )

const bootId = (fs: FileSystem.FileSystem) =>
  Effect.map(readOr(fs, "/proc/sys/kernel/random/boot_id"), (boot) => boot ?? "")

/** The identity of a process of this host (default: this one). */
export const of = Effect.fn("ProcessOwner.of")(function* (pid: number = process.pid) {
  const fs = yield* FileSystem.FileSystem
  const stat = yield* readOr(fs, `/proc/${pid}/stat`)
  return {
    host: hostname(),
    boot: yield* bootId(fs),
    pid,
    start: stat === undefined ? "" : startOf(stat)
  } satisfies Owner
})

/** Without /proc (not Linux), a signal 0 says whether the pid exists; a reused pid then counts as alive. */
const signalZero = (pid: number): Effect.Effect<Liveness> =>
  Effect.try({ try: () => process.kill(pid, 0), catch: (error) => error as { readonly code?: string } }).pipe(
    Effect.match({ onSuccess: () => "alive", onFailure: (error) => (error.code === "ESRCH" ? "dead" : "alive") })
  )

export const liveness = Effect.fn("ProcessOwner.liveness")(function* (owner: Owner) {
  const fs = yield* FileSystem.FileSystem
  if (owner.host !== hostname()) return "elsewhere" as Liveness
  const boot = yield* bootId(fs)
  // Every process of an earlier boot is gone.
  if (owner.boot !== boot) return (owner.boot === "" || boot === "" ? "elsewhere" : "dead") as Liveness
  if (owner.start === "") return yield* signalZero(owner.pid)
  const stat = yield* readOr(fs, `/proc/${owner.pid}/stat`)
  return (stat !== undefined && startOf(stat) === owner.start && !exited(stat) ? "alive" : "dead") as Liveness
})
