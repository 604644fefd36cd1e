// CPU time of processes from /proc (Linux), for the cluster benches: a process's own, and a Postgres server's with
// its backends'. Read in clock ticks (100 per second on Linux), returned in ms.
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

/** User + system CPU of a process so far, in ms (from /proc; 0 once it is gone). */
export const cpuOf = (pid: number | undefined) => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return 0
  }
}

/** Fields of /proc/PID/stat after the command name (index 1: parent, 11–14: user, system, waited children's). */
const statOf = (pid: number | string) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ").map(Number)
  } catch {
    return undefined
  }
}

/**
 * CPU of the Postgres server so far, in ms: the postmaster's own and its ended backends' (waited for), and its live
 * backends'. Statements cost the server CPU too, on the same cores as the runners.
 */
export const postgresCpu = (pgDir: string) => {
  const main = Number(readFileSync(join(pgDir, "data", "postmaster.pid"), "utf8").split("\n")[0])
  const own = statOf(main) ?? []
  let ticks = (own[11] ?? 0) + (own[12] ?? 0) + (own[13] ?? 0) + (own[14] ?? 0)
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    const fields = statOf(entry)
    if (fields?.[1] === main) ticks += (fields[11] ?? 0) + (fields[12] ?? 0)
  }
  return (ticks * 1000) / 100
}

/**
 * CPU of a process's spawn helper so far, in ms (packages/commands/src/internal/SpawnHelper.ts: the small process
 * that forks its children for it; its child with `--single-threaded` on the command line); 0 when it has none.
 * A process's spawning costs are its own CPU plus this.
 */
export const helperCpuOf = (pid: number | undefined) => {
  if (pid === undefined) return 0
  let ms = 0
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || statOf(entry)?.[1] !== pid) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes("--single-threaded")) ms += cpuOf(Number(entry))
    } catch {}
  }
  return ms
}
