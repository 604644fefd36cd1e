// A memory cgroup for one local service: its whole process tree is held under a limit the kernel enforces (the OOM
// killer ends it past the limit, and counts that). cgroup v2 where the memory controller is delegated, else the v1
// memory hierarchy. Created before the service starts, removed once it has ended.
import { rmdir } from "node:fs/promises"
import { Effect, FileSystem, Option, Scope } from "effect"

interface Flavour {
  readonly root: string
  readonly limitFile: string
  /** Where the kernel counts OOM kills in this group (`oom_kill N`). */
  readonly eventsFile: string
}

const v2: Flavour = { root: "/sys/fs/cgroup", limitFile: "memory.max", eventsFile: "memory.events" }
const v1: Flavour = {
  root: "/sys/fs/cgroup/memory",
  limitFile: "memory.limit_in_bytes",
  eventsFile: "memory.oom_control"
}

export interface MemoryCgroup {
  readonly dir: string
  readonly limitBytes: number
  /** The file whose path a wrapper writes its pid to (`cgroup.procs`), so everything it execs is inside. */
  readonly procsFile: string
  /** Whether the kernel killed a process of the group for its limit. */
  readonly oomKilled: Effect.Effect<boolean>
}

/** The hierarchy this machine offers, or None: limits cannot be enforced here. */
export const flavour = Effect.fn("MemoryCgroup.flavour")(function* () {
  const fs = yield* FileSystem.FileSystem
  const controllers = yield* fs.readFileString(`${v2.root}/cgroup.controllers`).pipe(Effect.orElseSucceed(() => ""))
  if (controllers.split(/\s+/).includes("memory")) return Option.some(v2)
  const v1Present = yield* fs.exists(`${v1.root}/${v1.limitFile}`).pipe(Effect.orElseSucceed(() => false))
  return v1Present ? Option.some(v1) : Option.none<Flavour>()
})

/** Why memory limits cannot be enforced here, or undefined when they can (checked by `--dry-run`). */
export const unavailable = Effect.fn("MemoryCgroup.unavailable")(function* () {
  const found = yield* flavour()
  if (Option.isNone(found)) return "no memory cgroup hierarchy (neither cgroup v2 with memory nor v1 memory)"
  const fs = yield* FileSystem.FileSystem
  const writable = yield* fs.access(found.value.root, { writable: true }).pipe(
    Effect.as(true),
    Effect.orElseSucceed(() => false)
  )
  return writable ? undefined : `${found.value.root} is not writable (run as root, or delegate the memory cgroup)`
})

const oomKills = (text: string): number => Number(/^oom_kill (\d+)/m.exec(text)?.[1] ?? 0)

const remove = (dir: string) =>
  // rmdir, not rm: a cgroup's files cannot be unlinked; the directory goes once its processes have ended.
  Effect.ignore(Effect.tryPromise(() => rmdir(dir)))

/** Creates `testbed-<name>` with the limit, removed when the scope closes; fails with the reason it cannot. */
export const make = Effect.fn("MemoryCgroup.make")(function* (name: string, limitBytes: number, scope: Scope.Scope) {
  const fs = yield* FileSystem.FileSystem
  const found = yield* flavour()
  if (Option.isNone(found)) return yield* Effect.fail("no memory cgroup hierarchy on this machine")
  const { root, limitFile, eventsFile } = found.value
  const dir = `${root}/testbed-${name}`
  yield* Effect.acquireRelease(
    fs.makeDirectory(dir).pipe(Effect.mapError((error) => `cannot create ${dir}: ${error.message}`)),
    () => remove(dir)
  ).pipe(Scope.provide(scope))
  yield* fs
    .writeFileString(`${dir}/${limitFile}`, String(limitBytes))
    .pipe(Effect.mapError((error) => `cannot set ${dir}/${limitFile}: ${error.message}`))
  // v1 would let the group swap past its limit where swap exists: hold memory+swap to the same figure.
  if (found.value === v1) {
    yield* Effect.ignore(fs.writeFileString(`${dir}/memory.memsw.limit_in_bytes`, String(limitBytes)))
  }
  return {
    dir,
    limitBytes,
    procsFile: `${dir}/cgroup.procs`,
    oomKilled: fs.readFileString(`${dir}/${eventsFile}`).pipe(
      Effect.map((text) => oomKills(text) > 0),
      Effect.orElseSucceed(() => false)
    )
  } satisfies MemoryCgroup
})
