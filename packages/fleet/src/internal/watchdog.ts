// Ends an agent's running commands when the agent dies, even by SIGKILL (no finalizer runs then). The agent holds
// the only writer of a pipe (a FIFO it unlinks at once) and starts one watchdog shell, in a session of its own so
// that killing the agent's process group spares it, blocked reading that pipe through /proc/<agent>/fd/<n>. Each
// command first writes its process group id to a marker file, then execs itself (no extra process per command);
// the agent removes the marker when the command ends. The kernel closes the agent's end of the pipe when it dies,
// for whatever reason: the read returns and the watchdog kills the process group of every marker left. Linux only.
import { execFile, spawn } from "node:child_process"
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Option, type Scope } from "effect"

export interface Watchdog {
  /** A fresh marker path for one command. */
  readonly marker: () => string
  /** `sh -c …`: records the command's process group in `marker`, then execs `sh -c command`. */
  readonly wrap: (command: string, marker: string) => { readonly program: string; readonly args: ReadonlyArray<string> }
  /** The command has ended: its group is no longer the watchdog's to kill. */
  readonly release: (marker: string) => Effect.Effect<void>
}

// $1: the marker; $2: the command. The command is started detached (a session and process group of its own, whose
// id is this shell's pid); exec keeps that pid, so the command's exit status and signal are its own.
const wrapper = `echo $$ > "$1" 2>/dev/null; exec sh -c "$2"`

// $1: the agent's end of the pipe; $2: the markers' directory. Reading fails at once if the agent is already gone.
const watcher = [
  `read -r line < "$1"`,
  `for marker in "$2"/*; do`,
  `  read -r group < "$marker" 2>/dev/null || continue`,
  `  case $group in ''|*[!0-9]*) continue ;; esac`,
  `  kill -KILL "-$group" 2>/dev/null`,
  "done",
  `rm -rf "$2"`
].join("\n")

const mkfifo = (path: string) =>
  Effect.callback<void, string>((resume) => {
    execFile("mkfifo", ["-m", "600", path], (error) =>
      resume(error ? Effect.fail(`mkfifo: ${error.message}`) : Effect.void)
    )
  })

/** The agent's end of the pipe: opened read-write (never blocks, keeps a writer for this process's lifetime). */
const openPipe = (dir: string) =>
  Effect.gen(function* () {
    const fifo = join(dir, "pipe")
    yield* mkfifo(fifo)
    // libuv opens it close-on-exec, so no child holds a writer; unlinked at once, nothing is left after a SIGKILL.
    return yield* Effect.try({ try: () => openSync(fifo, "r+"), catch: (cause) => `open: ${String(cause)}` }).pipe(
      Effect.ensuring(Effect.sync(() => rmSync(fifo, { force: true })))
    )
  })

const startWatcher = (pipe: string, dir: string) =>
  Effect.try({
    try: () => {
      const child = spawn("sh", ["-c", watcher, "testbed-agent-watchdog", pipe, dir], {
        detached: true,
        stdio: "ignore",
        cwd: "/"
      })
      child.on("error", () => undefined)
      child.unref()
    },
    catch: (cause) => `watchdog: ${String(cause)}`
  })

const unavailable = (why: string) =>
  Effect.as(
    Effect.logWarning(`agent: no watchdog (${why}): a command outlives an agent killed with SIGKILL`),
    Option.none<Watchdog>()
  )

/**
 * A watchdog for the Scope's lifetime, or `None` where it cannot work (not Linux, no mkfifo); the agent then says
 * so once: its commands end with it only when it stops normally.
 */
export const acquire: Effect.Effect<Option.Option<Watchdog>, never, Scope.Scope> = Effect.gen(function* () {
  if (process.platform !== "linux" || !existsSync(`/proc/${process.pid}/fd`)) return yield* unavailable("no /proc")
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "testbed-agent-"))),
    (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
  )
  const opened = yield* Effect.result(openPipe(dir))
  if (opened._tag === "Failure") return yield* unavailable(opened.failure)
  const fd = opened.success
  // Closed when the agent stops normally: the watchdog then finds no marker left (every command has been ended).
  yield* Effect.addFinalizer(() => Effect.sync(() => closeSync(fd)))
  const started = yield* Effect.result(startWatcher(`/proc/${process.pid}/fd/${fd}`, dir))
  if (started._tag === "Failure") return yield* unavailable(started.failure)
  let next = 0
  return Option.some({
    marker: () => join(dir, String(next++)),
    wrap: (command, marker) => ({ program: "sh", args: ["-c", wrapper, "testbed-agent", marker, command] }),
    release: (marker) => Effect.sync(() => rmSync(marker, { force: true }))
  })
})
