/**
 * A process that leads its own process group, started on `node:child_process` directly: spawned `detached`
 * (setsid), listed with the `Watchdog` the moment its pid is known, its pipes read by Node's own stream events, and
 * its group signalled by this module (TERM, then KILL after the grace period, each followed by a bounded wait until
 * the group is gone). This is the local runner's hot path: no stream, fiber or scope per command unless the command
 * asks for one (a timeout, a streamed output).
 *
 * Started by the spawn helper (`SpawnHelper`: a small process forks, not this one) where it runs, directly where
 * it does not (`TESTBED_SPAWN_DIRECT=1`, Windows, or the helper failed). Either way the child is seen through the
 * same few members of Node's `ChildProcess` (`Child`).
 */
import { spawn } from "node:child_process"
import type { Readable, Writable } from "node:stream"
import { Duration, Effect, Schedule } from "effect"
import * as Watchdog from "../Watchdog.ts"
import * as SpawnHelper from "./SpawnHelper.ts"

/** What to start: an argv, where, with what environment and input. */
export interface Spec {
  readonly program: string
  readonly args: ReadonlyArray<string>
  readonly cwd?: string | undefined
  /** The whole environment of the child; the parent's when undefined. */
  readonly env?: NodeJS.ProcessEnv | undefined
  readonly stdin?: string | undefined
}

/** How the leader ended: its exit code, or the signal that ended it. */
export interface Exited {
  readonly exitCode: number | null
  readonly signal: string | null
}

/** What is read of a started child: Node's `ChildProcess`, or the spawn helper's stand-in for one. */
export interface Child {
  readonly stdin: Writable | null
  readonly stdout: Readable | null
  readonly stderr: Readable | null
  once(event: "exit" | "close", listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown
}

/** A started leader of its own process group. */
export interface GroupProcess {
  readonly pid: number
  readonly child: Child
  /** Set once the leader has exited (Node has reaped it). */
  readonly exited: () => Exited | undefined
  /** Set once the leader has exited and both output pipes have closed. */
  readonly closed: () => boolean
  /** Set once the whole group is known to be gone (so it is not asked again). */
  gone: boolean
}

/** Why a spawn was refused: the error code (ENOENT, EACCES, E2BIG, …) and Node's message. */
export interface Refused {
  readonly code: string | undefined
  readonly message: string
}

const refusal = (error: unknown): Refused => {
  const value = error as { readonly code?: unknown; readonly message?: unknown } | null
  return {
    code: typeof value?.code === "string" ? value.code : undefined,
    message: typeof value?.message === "string" && value.message !== "" ? value.message : String(error)
  }
}

/** Listens for the leader's end; Node emits `exit` before `close` (pipes closed too). */
const watch = (child: Child, pid: number): GroupProcess => {
  let exited: Exited | undefined
  let closed = false
  child.once("exit", (code, signal) => {
    exited = { exitCode: code, signal }
  })
  child.once("close", (code, signal) => {
    exited ??= { exitCode: code, signal }
    closed = true
  })
  return { pid, child, exited: () => exited, closed: () => closed, gone: false }
}

/** Delivers the input and closes it; a child that exits without reading it (EPIPE) is not an error of ours. */
const feed = (child: Child, input: string | undefined): void => {
  const stdin = child.stdin
  if (stdin === null) return
  stdin.on("error", () => {})
  stdin.end(input)
}

/**
 * Spawns the leader of a new process group and lists the group with the `Watchdog` before anything else runs.
 * Node throws some refusals of the kernel (E2BIG, EINVAL) and reports others (ENOENT, EACCES) as an `error` event
 * with no pid: both become `Refused`.
 */
export const start = (spec: Spec): Effect.Effect<GroupProcess, Refused> =>
  SpawnHelper.available() ? startByHelper(spec) : startDirectly(spec)

/**
 * Through the helper: the group is guarded the moment its pid arrives, and the process is watched (its `exit` and
 * `close` listened for) in the same turn its pipes arrive, before any later message can. Called where it cannot be
 * interrupted (the acquire of a resource), so an answer is always waited for; the helper answers each request
 * (started, refused, or, if it dies, lost).
 */
const startByHelper = (spec: Spec): Effect.Effect<GroupProcess, Refused> =>
  Effect.callback<GroupProcess, Refused>((resume) => {
    const child = SpawnHelper.spawn({
      program: spec.program,
      args: spec.args,
      cwd: spec.cwd,
      // The helper's own environment is empty: the child's is always named.
      env: spec.env ?? process.env,
      detached: true,
      stdio: [spec.stdin !== undefined ? "pipe" : "ignore", "pipe", "pipe"]
    })
    if (child === undefined) {
      resume(startDirectly(spec))
      return
    }
    child.once("pid", (pid: number) => Watchdog.guard(pid))
    child.once("spawn", () => {
      const pid = child.pid as number
      child.stdout?.on("error", () => {})
      child.stderr?.on("error", () => {})
      const started = watch(child, pid)
      feed(child, spec.stdin)
      resume(Effect.succeed(started))
    })
    child.once("error", (error: unknown) => {
      // Lost half-way (a pipe never arrived, or the helper died): what did start is ended, so it is not listed.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL")
        } catch {}
        Watchdog.release(child.pid)
      }
      resume(Effect.fail(refusal(error)))
    })
  })

const startDirectly = (spec: Spec): Effect.Effect<GroupProcess, Refused> =>
  Effect.try({ try: () => launch(spec), catch: refusal }).pipe(
    Effect.flatMap(({ child, failure }) => {
      const pid = child.pid
      if (pid !== undefined) return Effect.succeed(watch(child, pid))
      if (failure.error !== undefined) return Effect.fail(refusal(failure.error))
      return Effect.callback<never, Refused>((resume) => {
        failure.notify = (error) => resume(Effect.fail(refusal(error)))
      })
    })
  )

/** Where a refusal reported after the spawn returned goes: kept until someone waits for it. */
interface LateFailure {
  error?: unknown
  notify?: (error: unknown) => void
}

/**
 * The spawn itself, with its `error` listener attached at once: Node reports ENOENT and EACCES on the next tick,
 * and an `error` event nobody listens to would end this process. Later errors (none are expected once it runs)
 * are ignored: the exit says how it ended.
 */
const launch = (spec: Spec): { readonly child: ReturnType<typeof spawn>; readonly failure: LateFailure } => {
  const child = spawn(spec.program, [...spec.args], {
    ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
    ...(spec.env !== undefined ? { env: spec.env } : {}),
    stdio: [spec.stdin !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
    detached: true
  })
  // Listed before anything else runs, so a SIGKILL of this process from now on still ends the group.
  if (child.pid !== undefined) {
    Watchdog.guard(child.pid)
    feed(child, spec.stdin)
  }
  const failure: LateFailure = {}
  child.on("error", (error) => {
    if (failure.notify !== undefined) failure.notify(error)
    else failure.error = error
  })
  // A failing read of our own pipe ends it; `close` still comes. Without a listener it would end this process.
  child.stdout?.on("error", () => {})
  child.stderr?.on("error", () => {})
  return { child, failure }
}

/** Sends `signal` to the whole group; false when no member is left to receive it. */
export const signalGroup = (pid: number, signal: NodeJS.Signals | 0): Effect.Effect<boolean> =>
  Effect.try({ try: () => process.kill(-pid, signal), catch: () => false }).pipe(Effect.orElseSucceed(() => false))

/** Whether any process of the group is left (zombies not yet reaped included). */
export const groupAlive = (pid: number): Effect.Effect<boolean> => signalGroup(pid, 0)

/** Waits until the group is gone, polling (the kernel tells no one); gives up after `within`. True when gone. */
const awaitGroupGone = (pid: number, within: Duration.Duration): Effect.Effect<boolean> =>
  Effect.map(groupAlive(pid), (alive) => !alive).pipe(
    Effect.repeat({
      schedule: Schedule.spaced("20 millis").pipe(Schedule.upTo({ duration: within })),
      until: (gone) => gone
    })
  )

/** After KILL, how long to wait for the kernel to tear the group down before giving up on it. */
const reapWithin = Duration.seconds(2)

/** TERM to the group, then KILL to what is left after `grace`; returns once the group is gone (or given up on). */
export const terminate = Effect.fn("GroupProcess.terminate")(function* (pid: number, grace: Duration.Duration) {
  if (!(yield* signalGroup(pid, "SIGTERM"))) return
  if (yield* awaitGroupGone(pid, grace)) return
  yield* signalGroup(pid, "SIGKILL")
  yield* awaitGroupGone(pid, reapWithin)
})

/** Waits for the leader's exit. */
export const awaitExit = (process: GroupProcess): Effect.Effect<Exited> =>
  Effect.suspend(() => {
    const known = process.exited()
    if (known !== undefined) return Effect.succeed(known)
    return Effect.callback<Exited>((resume) => {
      process.child.once("exit", (exitCode, signal) => resume(Effect.succeed({ exitCode, signal })))
    })
  })

/** Waits until the leader has exited and both output pipes have closed (every byte has been read). */
export const awaitClosed = (process: GroupProcess): Effect.Effect<void> =>
  Effect.suspend(() =>
    process.closed()
      ? Effect.void
      : Effect.callback<void>((resume) => {
          process.child.once("close", () => resume(Effect.void))
        })
  )

/**
 * Ends what is left of the group once the leader has exited (background jobs holding the pipes open), so reading
 * the output always finishes. After a normal exit the group is usually empty: one `kill(-pgid, 0)` says so.
 */
export const endLeftovers = (process: GroupProcess, grace: Duration.Duration): Effect.Effect<void> =>
  process.gone
    ? Effect.void
    : Effect.flatMap(groupAlive(process.pid), (alive) => {
        if (alive) return terminate(process.pid, grace)
        process.gone = true
        return Effect.void
      })

/**
 * The release of a started process: if it is still running (interrupted, or its stream left early), the group is
 * ended; then the watchdog forgets it, as no member is left to end.
 */
export const release = (process: GroupProcess, grace: Duration.Duration): Effect.Effect<void> =>
  Effect.suspend(() =>
    process.exited() === undefined ? terminate(process.pid, grace) : endLeftovers(process, grace)
  ).pipe(Effect.ensuring(Effect.sync(() => Watchdog.release(process.pid))))
