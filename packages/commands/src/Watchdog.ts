/**
 * Children die with their run, even when the run is SIGKILLed (which runs no finalizer). One small `sh` process per
 * Node process — the watchdog — reads a pipe from it: `+<pgid>` when a process group is started, `-<pgid>` when it
 * is gone. When the pipe closes (the Node process exited, or was killed) the watchdog sends TERM to every group
 * still listed, then KILL a second later, and exits. Guarding a command costs one short write to that pipe (its
 * release rides along with the next guard, or follows within 50 ms), no process of its own. The pipe's write end is close-on-exec, so no child holds it open.
 *
 * Every process started by LocalRunner or through `Watchdog.spawner` (the localhost environment) is guarded. The
 * watchdog starts when such a spawner is made, and a group is listed as soon as its spawn has returned: a SIGKILL
 * in that moment can leave the group running. Where that moment matters (a fleet agent, killed any time while its
 * commands run), `announced` closes it: the command's own shell records its group in a marker file before it runs
 * anything, and the watchdog ends the groups of the markers too (looking again a second later, for a shell that
 * was still writing its marker).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { ChildProcessSpawner } from "effect/process"

// `read` returns non-zero at end of input: the loop ends when the pipe closes. Signals meant for the run (a
// terminal's Ctrl-C reaches its whole process group) do not end the watchdog: only the pipe does. `=<dir>` names
// the markers' directory (removed at the end).
const script = `trap '' INT TERM HUP
groups=" "
dir=""
while IFS= read -r line; do
  case "$line" in
    +*) groups="$groups\${line#+} " ;;
    -*) g="\${line#-}"
        case "$groups" in *" $g "*) groups="\${groups%%" $g "*} \${groups#*" $g "}" ;; esac
        [ -n "$dir" ] && rm -f "$dir/$g" ;;
    =*) dir="\${line#=}" ;;
  esac
done
marked() {
  [ -n "$dir" ] || return 0
  for m in "$dir"/*; do
    g="\${m##*/}"
    case "$g" in ''|*[!0-9]*) ;; *) printf '%s ' "$g" ;; esac
  done
}
set -- $groups $(marked)
[ "$#" -eq 0 ] && [ -z "$dir" ] && exit 0
for g in "$@"; do kill -s TERM -- "-$g" 2>/dev/null; done
sleep 1
set -- $groups $(marked)
for g in "$@"; do kill -s KILL -- "-$g" 2>/dev/null; done
[ -n "$dir" ] && rm -rf "$dir"
exit 0
`

type State =
  | { readonly kind: "idle" }
  | { readonly kind: "running"; readonly child: ChildProcess }
  | { readonly kind: "off" }

let state: State = { kind: "idle" }

/** Starts the watchdog on first use; without `sh` (or on Windows) guarding does nothing. */
const watchdog = (): ChildProcess | undefined => {
  if (state.kind === "running") return state.child
  if (state.kind === "off") return undefined
  if (process.platform === "win32") {
    state = { kind: "off" }
    return undefined
  }
  // Its own process group, so a signal to the run's group (Ctrl-C) does not reach it.
  const child = spawn("/bin/sh", ["-c", script], { stdio: ["pipe", "ignore", "ignore"], detached: true })
  child.once("error", () => {
    state = { kind: "off" }
  })
  child.once("exit", () => {
    state = { kind: "off" }
  })
  child.stdin?.on("error", () => {
    state = { kind: "off" }
  })
  // Neither the watchdog nor its pipe keeps this process alive.
  child.unref()
  ;(child.stdin as { unref?: () => void } | null)?.unref?.()
  state = { kind: "running", child }
  return child
}

/**
 * Starts the watchdog now, if it is not running yet. A runner calls it when it is built: starting it forks this
 * process, which under load takes long enough for a SIGKILL to land between a command's start and its `guard`.
 */
export const start = (): void => {
  watchdog()
}

const send = (line: string): void => {
  const child = watchdog()
  if (child?.stdin?.writable === true) child.stdin.write(line)
}

// Releases wait for the next `guard` (one write, so one wake-up of the watchdog, per command instead of two) or
// at most `releaseDelay` ms. A release only matters once this process has died, and until the watchdog reads it the
// group is merely signalled when it no longer exists: its number is not reused that soon (pids are handed out in
// increasing order up to pid_max before they wrap).
const releaseDelay = 50
let pendingReleases = ""
let releaseTimer: ReturnType<typeof setTimeout> | undefined

const flushReleases = (): void => {
  releaseTimer = undefined
  if (pendingReleases === "") return
  const lines = pendingReleases
  pendingReleases = ""
  send(lines)
}

/** Ends the process group `pgid` when this process dies before `release(pgid)`. */
export const guard = (pgid: number): void => {
  // Pending releases ride along. The watchdog counts listings (a number listed twice needs two releases), so a
  // number released and at once reused by the new group stays listed whatever the order.
  const lines = `${pendingReleases}+${pgid}\n`
  pendingReleases = ""
  send(lines)
}

/** The group `pgid` is gone (its processes were reaped): forget it, so a reused number is never signalled. */
export const release = (pgid: number): void => {
  // Removed here too, at once: the watchdog removes it when it reads the line.
  if (markers !== undefined) rmSync(join(markers, String(pgid)), { force: true })
  pendingReleases += `-${pgid}\n`
  if (releaseTimer === undefined) {
    releaseTimer = setTimeout(flushReleases, releaseDelay)
    // A pending release does not keep this process alive; at exit the watchdog ends only groups already gone.
    releaseTimer.unref()
  }
}

let markers: string | undefined

/** The markers' directory, made (and named to the watchdog) on first use. */
const markerDirectory = (): string | undefined => {
  if (markers !== undefined) return markers
  if (watchdog() === undefined) return undefined
  markers = mkdtempSync(join(tmpdir(), "testbed-watchdog-"))
  send(`=${markers}\n`)
  return markers
}

// $1: the markers' directory; $2: the script. The shell leads the command's process group (a detached spawn): it
// records that group, then execs the script's shell, which keeps its pid, so exit status and signals are its own.
const announcing = `echo $$ > "$1/$$" 2>/dev/null; exec sh -c "$2"`

/**
 * The argv that runs `sh -c script` after recording its own process group for the watchdog, so that the group is
 * ended with this process even if it dies the moment after the spawn. Plain `sh -c script` where there is no
 * watchdog. Spawn it detached (LocalRunner does) and `release` its pid once it has ended.
 */
export const announced = (shellScript: string): { readonly program: string; readonly args: ReadonlyArray<string> } => {
  const dir = markerDirectory()
  return dir === undefined
    ? { program: "sh", args: ["-c", shellScript] }
    : { program: "sh", args: ["-c", announcing, "testbed-guarded", dir, shellScript] }
}

/** The watchdog's own pid, once started (for tests and diagnostics). */
export const pid = (): number | undefined => (state.kind === "running" ? state.child.pid : undefined)

/** Whether a spawned command leads a process group of its own (the spawner's default off Windows). */
const leadsGroup = (command: Parameters<ChildProcessSpawner.ChildProcessSpawner["Service"]["spawn"]>[0]) =>
  command._tag === "StandardCommand" && command.options.detached !== false

/**
 * A spawner that guards every process group it starts. The release is registered before the spawn, so it runs
 * after the inner spawner's own cleanup has ended the group.
 */
export const spawner = (
  inner: ChildProcessSpawner.ChildProcessSpawner["Service"]
): ChildProcessSpawner.ChildProcessSpawner["Service"] => {
  // Started now, not at the first guard: starting it forks this process, which under load takes long enough for a
  // SIGKILL to land between a command's start and its registration.
  watchdog()
  return ChildProcessSpawner.make((command) =>
    Effect.gen(function* () {
      let guarded: number | undefined
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (guarded !== undefined) release(guarded)
        })
      )
      const handle = yield* inner.spawn(command)
      if (leadsGroup(command)) {
        guarded = handle.pid
        guard(handle.pid)
      }
      return handle
    })
  )
}

/** Replaces the `ChildProcessSpawner` in context by one that guards what it starts. */
export const layer: Layer.Layer<
  ChildProcessSpawner.ChildProcessSpawner,
  never,
  ChildProcessSpawner.ChildProcessSpawner
> = Layer.effect(ChildProcessSpawner.ChildProcessSpawner, Effect.map(ChildProcessSpawner.ChildProcessSpawner, spawner))
