// Ends an agent's running commands when the agent dies, even by SIGKILL (no finalizer runs then). The agent holds
// the only writer of a pipe (a FIFO it unlinks at once); each command starts beside a watchdog shell blocked
// reading that pipe through /proc/<agent>/fd/<n>. The kernel closes the agent's end when it dies, for any reason;
// the read then returns and the watchdog kills the command's whole process group. Linux only (/proc).
import { execFile } from "node:child_process"
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Option, type Scope } from "effect"

export interface Watchdog {
  /** The path a command's watchdog opens: the agent's end of the pipe, seen from another process. */
  readonly path: string
  /** `sh -c WRAPPER …` running `command` beside its watchdog. */
  readonly wrap: (command: string) => { readonly program: string; readonly args: ReadonlyArray<string> }
}

// $1: the agent's pipe; $2: the command. The wrapper waits for the command (so it can end and reap the watchdog:
// an orphan would linger as a zombie where PID 1 does not reap, and keep the group alive) and exits with its
// status. If the agent is already gone, the open fails and the group is killed at once. A command killed by a
// signal reports 128 + the signal number, as a shell does.
const wrapper = [
  `{ read -r line < "$1"; kill -KILL 0; } </dev/null >/dev/null 2>&1 &`,
  "watchdog=$!",
  `sh -c "$2"`,
  "status=$?",
  `kill "$watchdog" 2>/dev/null`,
  `wait "$watchdog" 2>/dev/null`,
  `exit "$status"`
].join("\n")

const mkfifo = (path: string) =>
  Effect.callback<void, string>((resume) => {
    execFile("mkfifo", ["-m", "600", path], (error) =>
      resume(error ? Effect.fail(`mkfifo: ${error.message}`) : Effect.void)
    )
  })

/**
 * A watchdog for this process's lifetime (the Scope's), or `None` where it cannot work (not Linux, no mkfifo);
 * the agent then says so once: its commands end with it only when it stops normally.
 */
export const acquire: Effect.Effect<Option.Option<Watchdog>, never, Scope.Scope> = Effect.gen(function* () {
  if (process.platform !== "linux" || !existsSync(`/proc/${process.pid}/fd`)) {
    return yield* Effect.as(
      Effect.logWarning("agent: no /proc: a command outlives an agent killed with SIGKILL"),
      Option.none()
    )
  }
  const dir = mkdtempSync(join(tmpdir(), "testbed-agent-"))
  const fifo = join(dir, "watchdog")
  const opened = yield* mkfifo(fifo).pipe(
    // O_RDWR: never blocks, and keeps a writer open for as long as this process lives (libuv opens it close-on-exec,
    // so no child holds it); unlinked at once, so nothing is left behind even after a SIGKILL.
    Effect.andThen(Effect.try({ try: () => openSync(fifo, "r+"), catch: (cause) => `open: ${String(cause)}` })),
    Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true }))),
    Effect.result
  )
  if (opened._tag === "Failure") {
    return yield* Effect.as(
      Effect.logWarning(`agent: no watchdog (${opened.failure}): a command outlives an agent killed with SIGKILL`),
      Option.none()
    )
  }
  const fd = opened.success
  yield* Effect.addFinalizer(() => Effect.sync(() => closeSync(fd)))
  const path = `/proc/${process.pid}/fd/${fd}`
  return Option.some({
    path,
    wrap: (command) => ({ program: "sh", args: ["-c", wrapper, "testbed-agent", path, command] })
  })
})
