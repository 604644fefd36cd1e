/**
 * Child processes started by a small helper process instead of by this one. On Linux Node's `spawn` forks the
 * calling process: in a runner of ~235 MB that is a copy of its page tables, then a copy-on-write fault for each
 * page it writes afterwards, and an event loop blocked until the child has exec'd (bench/spawn.ts, BENCHMARKS.md).
 * The helper is a plain Node script (~54 MB resident, single-threaded), started once per process on first use
 * (itself the last fork of the big process), that spawns on request and hands back the child's pid, its stdio pipes (the sockets
 * themselves, passed over the IPC channel, so output never goes through the helper) and, later, its exit.
 *
 * The helper has an empty environment: a child gets exactly the environment its request names (the caller's own
 * when it names none). It leads its own process group (a Ctrl-C to the run's group does not reach it), never keeps
 * this process alive (its channel is referenced only while a referenced child's exit is awaited), and exits when this
 * process does: its IPC channel closes (`disconnect`) or it finds itself reparented, it sends TERM to the groups of
 * its children still running, then KILL a second later (as the watchdog does), and exits. Guarding those groups
 * after a SIGKILL stays the `Watchdog`'s job (callers guard each pid the moment it arrives, or once the pipes are
 * here); the helper covers the moment in between.
 *
 * Off where it cannot run (Windows), when `TESTBED_SPAWN_DIRECT=1`, or once it failed to start or died: callers
 * then spawn directly (`available()` is false).
 */
import { type ChildProcess, type StdioOptions, spawn as nodeSpawn } from "node:child_process"
import { EventEmitter } from "node:events"
import type { Socket } from "node:net"

// CommonJS (`node -e`), node: builtins only: it must start fast and stay small. Each pipe's socket is told to stop
// reading before it is sent (Node starts reading a child's pipe at once), and is neither resumed nor destroyed when
// the child exits, so no byte is taken by the helper and every pipe is sent, even one still queued behind another
// (one handle per message, each acknowledged before the next goes). The pid rides with the first message, the exit follows the pipes (the channel
// keeps the order of messages). Every child leads its own group (the callers ask for nothing else), which is what
// the helper signals when its parent goes.
const script = `"use strict"
const { spawn } = require("node:child_process")
const running = new Set()
const signal = (name) => { for (const pid of running) { try { process.kill(-pid, name) } catch {} } }
let leaving = false
const leave = () => {
  if (leaving) return
  leaving = true
  if (running.size === 0) process.exit(0)
  signal("SIGTERM")
  setTimeout(() => { signal("SIGKILL"); process.exit(0) }, 1000)
}
process.on("disconnect", leave)
// No disconnect comes while a pipe sent to the parent awaits its acknowledgement (Node flushes that queue first):
// a parent SIGKILLed during a hand-over left this helper and the new child running for good. Being reparented
// says the same.
const parent = process.ppid
setInterval(() => { if (process.ppid !== parent) leave() }, 500).unref()
const send = (message, handle) => { if (process.connected) process.send(message, handle) }
const refuse = (id, error) => send({ t: "refused", id, code: error && error.code, message: String(error && error.message || error) })
process.on("message", (m) => {
  if (!m || m.t !== "spawn") return
  let child
  try {
    child = spawn(m.program, m.args, { cwd: m.cwd, env: m.env, stdio: m.stdio, detached: m.detached })
  } catch (error) { refuse(m.id, error); return }
  const pid = child.pid
  child.on("error", (error) => { if (pid === undefined) refuse(m.id, error) })
  if (pid === undefined) return
  running.add(pid)
  const pipes = [child.stdin, child.stdout, child.stderr]
  for (const pipe of pipes) {
    if (!pipe || !pipe._handle) continue
    pipe._handle.readStop()
    // When the child exits Node resumes its unread pipes (to drain them) and destroys its stdin: a pipe still
    // queued behind another would lose its bytes, or not be sent at all.
    pipe.resume = () => pipe
    pipe.destroy = () => pipe
  }
  let first = true
  for (let fd = 0; fd < 3; fd++) {
    const pipe = pipes[fd]
    if (!pipe) continue
    send({ t: first ? "started" : "pipe", id: m.id, pid, fd }, pipe)
    first = false
  }
  if (first) send({ t: "started", id: m.id, pid, fd: -1 })
  child.on("exit", (code, ended) => {
    running.delete(pid)
    send({ t: "exit", id: m.id, code, signal: ended })
  })
})
`

/** What to start. `env` is the child's whole environment. */
export interface Request {
  readonly program: string
  readonly args: ReadonlyArray<string>
  readonly cwd?: string | undefined
  readonly env: NodeJS.ProcessEnv
  readonly detached: boolean
  /** Which of stdin, stdout, stderr are pipes (the others are /dev/null). */
  readonly stdio: readonly ["pipe" | "ignore", "pipe" | "ignore", "pipe" | "ignore"]
}

type Message =
  | { readonly t: "started"; readonly id: number; readonly pid: number; readonly fd: number }
  | { readonly t: "pipe"; readonly id: number; readonly pid: number; readonly fd: number }
  | { readonly t: "refused"; readonly id: number; readonly code?: string; readonly message: string }
  | { readonly t: "exit"; readonly id: number; readonly code: number | null; readonly signal: NodeJS.Signals | null }

/**
 * A child started by the helper, shaped like the part of Node's `ChildProcess` its users read: `pid`, the three
 * pipes, and the events `spawn` (pid and every pipe here), `error` (refused: no pid), `exit` and `close` (exited and
 * every output pipe closed), with the arguments Node gives them.
 */
export class HelperChild extends EventEmitter {
  pid: number | undefined = undefined
  stdin: Socket | null = null
  stdout: Socket | null = null
  stderr: Socket | null = null
  exitCode: number | null = null
  signalCode: NodeJS.Signals | null = null
  /** Set once every requested pipe has arrived. */
  ready = false
  /** Whether this child keeps this process alive (as Node's children do until `unref`). */
  referenced = true
  private exited = false
  private openOutputs = 0
  private awaited = 0

  constructor(request: Request) {
    super()
    this.awaited = request.stdio.filter((kind) => kind === "pipe").length
  }

  /** A pipe arrived; its readers are attached by whoever listens to `spawn`. */
  pipe(fd: number, socket: Socket): void {
    if (fd === 0) this.stdin = socket
    else {
      this.openOutputs++
      socket.once("close", () => {
        this.openOutputs--
        this.maybeClose()
      })
      if (fd === 1) this.stdout = socket
      else this.stderr = socket
    }
    this.awaited--
    this.maybeReady()
  }

  maybeReady(): void {
    if (this.ready || this.pid === undefined || this.awaited > 0) return
    this.ready = true
    this.emit("spawn")
  }

  exit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exited = true
    this.exitCode = code
    this.signalCode = signal
    this.emit("exit", code, signal)
    this.maybeClose()
  }

  private maybeClose(): void {
    if (this.exited && this.ready && this.openOutputs === 0) this.emit("close", this.exitCode, this.signalCode)
  }
}

type State =
  | { readonly kind: "idle" }
  | { readonly kind: "running"; readonly helper: ChildProcess }
  | { readonly kind: "off" }

let state: State = { kind: "idle" }
let nextId = 0
const waiting = new Map<number, HelperChild>()
let referencedCount = 0

/** The IPC channel keeps this process alive only while a referenced request waits for an answer (its exit). */
const updateReference = (): void => {
  if (state.kind !== "running") return
  const channel = state.helper.channel as { ref?: () => void; unref?: () => void } | undefined | null
  if (referencedCount > 0) channel?.ref?.()
  else channel?.unref?.()
}

/** Whether waiting for `child`'s exit keeps this process alive (`unref` of effect's handles); its pipes follow. */
export const setChildReferenced = (child: HelperChild, referenced: boolean): void => {
  if (child.referenced === referenced) return
  child.referenced = referenced
  for (const pipe of [child.stdin, child.stdout, child.stderr]) {
    if (referenced) pipe?.ref()
    else pipe?.unref()
  }
  if (![...waiting.values()].includes(child)) return
  referencedCount += referenced ? 1 : -1
  updateReference()
}

/** Every request still waiting is told the helper is gone, with the exit Node would report for a lost child. */
const fail = (): void => {
  state = { kind: "off" }
  const lost = [...waiting.values()]
  waiting.clear()
  referencedCount = 0
  for (const child of lost) {
    // Not all there yet (its pipes were still on the way): a refusal to the caller, who ends the group if it has one.
    if (!child.ready) child.emit("error", Object.assign(new Error("the spawn helper exited"), { code: "EHELPER" }))
    else child.exit(null, "SIGKILL")
  }
}

const onMessage = (message: Message, handle: unknown): void => {
  const child = waiting.get(message.id)
  if (child === undefined) return
  switch (message.t) {
    case "started":
    case "pipe": {
      if (child.pid === undefined) {
        child.pid = message.pid
        child.emit("pid", message.pid)
      }
      if (handle !== undefined && message.fd >= 0) child.pipe(message.fd, handle as Socket)
      else child.maybeReady()
      return
    }
    case "refused": {
      done(message.id)
      child.emit("error", Object.assign(new Error(message.message), { code: message.code }))
      return
    }
    case "exit": {
      done(message.id)
      // Exited before every pipe arrived (the helper could not send one): told as a failure, never left waiting.
      if (!child.ready) {
        child.emit("error", Object.assign(new Error("the spawn helper lost a pipe of the child"), { code: "EHELPER" }))
        return
      }
      child.exit(message.code, message.signal)
      return
    }
  }
}

const done = (id: number): void => {
  const child = waiting.get(id)
  waiting.delete(id)
  if (child?.referenced === true) {
    referencedCount--
    updateReference()
  }
}

/**
 * How long a request may wait for the helper's first answer (the pid, or a refusal). The helper answers as soon as
 * its own fork returns, well under a second even on a loaded machine; one that has not answered in this long is
 * stuck (stopped, starved), and every wait has a deadline: it is killed, its requests fail, and later spawns are
 * direct. Mutable for the tests only.
 */
export const limits = { answerWithinMs: 60_000 }

/** The helper did not answer in time: it is ended, and treated as one that died. */
const unresponsive = (): void => {
  if (state.kind !== "running") return
  const stuck = state.helper
  fail()
  try {
    stuck.kill("SIGKILL")
  } catch {}
}

/** Starts the helper on first use; undefined where it is off. */
const helper = (): ChildProcess | undefined => {
  if (state.kind === "running") return state.helper
  if (state.kind === "off") return undefined
  if (process.platform === "win32" || process.env.TESTBED_SPAWN_DIRECT === "1") {
    state = { kind: "off" }
    return undefined
  }
  let started: ChildProcess
  try {
    // An empty environment (nothing of this process's reaches it), its own process group, stderr kept for a crash.
    // Single-threaded (no V8 worker threads): its forks cost about a quarter less CPU (bench/spawn.ts).
    started = nodeSpawn(process.execPath, ["--single-threaded", "-e", script], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      env: {},
      detached: true
    })
  } catch {
    state = { kind: "off" }
    return undefined
  }
  if (started.pid === undefined) {
    started.once("error", () => {})
    state = { kind: "off" }
    return undefined
  }
  started.once("error", fail)
  started.once("exit", fail)
  started.on("message", (message: Message, handle: unknown) => onMessage(message, handle))
  started.unref()
  state = { kind: "running", helper: started }
  updateReference()
  return started
}

/** Starts the helper now, if it is not running yet (the last fork of this process). False where it is off. */
export const start = (): boolean => helper() !== undefined

/** Whether spawns go through the helper. */
export const available = (): boolean => start()

/** The helper's pid, once started (for tests and benchmarks). */
export const pid = (): number | undefined => (state.kind === "running" ? state.helper.pid : undefined)

/**
 * Asks the helper to start `request`. The child emits `pid` as soon as the pid is known, then `spawn` once every
 * requested pipe is here, or `error` if it was refused (ENOENT, EACCES, E2BIG, … as Node reports them). Undefined
 * where the helper is off: spawn directly.
 */
export const spawn = (request: Request): HelperChild | undefined => {
  const running = helper()
  if (running === undefined) return undefined
  const id = ++nextId
  const child = new HelperChild(request)
  waiting.set(id, child)
  referencedCount++
  updateReference()
  const stdio: StdioOptions = [...request.stdio]
  running.send(
    {
      t: "spawn",
      id,
      program: request.program,
      args: request.args,
      cwd: request.cwd,
      env: request.env,
      stdio,
      detached: request.detached
    },
    // The channel closed under us: the helper is gone, and so is every request it had.
    (error) => {
      if (error !== null) fail()
    }
  )
  const deadline = setTimeout(() => {
    if (waiting.get(id) === child && child.pid === undefined) unresponsive()
  }, limits.answerWithinMs)
  deadline.unref()
  child.once("pid", () => clearTimeout(deadline))
  child.once("error", () => clearTimeout(deadline))
  return child
}
