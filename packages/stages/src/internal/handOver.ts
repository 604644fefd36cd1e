// Host settings shared by instances of a project (a sysctl, an existing host interface's ARP flag): the last
// instance to go down restores the earlier value. An instance going down while another one that changed the same
// setting is still up leaves the setting alone; if that other one came up after it (and so recorded this one's
// value as "earlier"), it inherits this one's earlier value.
import { Effect } from "effect"
import * as StageState from "../StageState.ts"
import { records } from "./instance.ts"
import type { Project } from "./project.ts"

const keyOf = (r: StageState.Restore) => (r.kind === "sysctl" ? `sysctl:${r.key}` : `arp:${r.interface}`)

/** What `current` must restore itself; earlier values of settings others still use are handed over to them. */
export const handOver = Effect.fn("Stages.handOver")(function* (project: Project, current: StageState.Current) {
  const others = (yield* records(project.stateDir)).filter((r) => r.dir !== project.recordDir)
  const mine: Array<StageState.Restore> = []
  for (const restore of current.hostRestore) {
    const users = others.filter((o) => o.current.hostRestore.some((r) => keyOf(r) === keyOf(restore)))
    if (users.length === 0) {
      mine.push(restore)
      continue
    }
    const later = users
      .filter((o) => o.current.startedAt > current.startedAt)
      .sort((a, b) => a.current.startedAt.localeCompare(b.current.startedAt))[0]
    if (later === undefined) continue
    const hostRestore = later.current.hostRestore.map((r) => (keyOf(r) === keyOf(restore) ? restore : r))
    yield* StageState.write(later.dir, { ...later.current, hostRestore })
  }
  return mine as ReadonlyArray<StageState.Restore>
})
