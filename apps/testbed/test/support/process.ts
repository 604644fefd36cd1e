// Real processes for the CLI's tests: each runs in a process group of its own, with a deadline, and the whole
// group is killed when it ends, times out or the test is interrupted — background jobs of a shell example too.
import { spawn } from "node:child_process"
import { Effect } from "effect"

export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** stdout and stderr together, for messages. */
  readonly output: string
}

export interface Options {
  readonly cwd: string
  readonly env?: NodeJS.ProcessEnv
  /** Killed (the whole group, SIGKILL) after this long. */
  readonly timeoutMs?: number
  readonly input?: string
  /** Called with the child's pid once it runs (to signal it from the test). */
  readonly onSpawn?: (pid: number) => void
  /** Called with each chunk of output as it comes. */
  readonly onOutput?: (chunk: string) => void
}

/** Output kept per stream: enough for any message a test looks for, bounded. */
const maxOutput = 4 * 1024 * 1024

const killGroup = (pid: number | undefined, signal: NodeJS.Signals) => {
  if (pid === undefined) return
  try {
    process.kill(-pid, signal)
  } catch {
    // the group is already gone
  }
}

export const run = (command: string, args: ReadonlyArray<string>, options: Options) =>
  Effect.callback<Finished>((resume) => {
    const child = spawn(command, [...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    let output = ""
    const collect = (stream: "out" | "err") => (chunk: Buffer) => {
      const text = chunk.toString("utf8")
      if (stream === "out" && stdout.length < maxOutput) stdout += text
      if (stream === "err" && stderr.length < maxOutput) stderr += text
      if (output.length < maxOutput) output += text
      options.onOutput?.(text)
    }
    child.stdout.on("data", collect("out"))
    child.stderr.on("data", collect("err"))
    child.stdin.end(options.input ?? "")
    if (child.pid !== undefined) options.onSpawn?.(child.pid)
    const timer = setTimeout(() => killGroup(child.pid, "SIGKILL"), options.timeoutMs ?? 120_000)
    child.on("error", (error) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code: 127, signal: null, stdout, stderr: `${stderr}${error.message}`, output }))
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      killGroup(child.pid, "SIGKILL")
      resume(Effect.succeed({ code, signal, stdout, stderr, output }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      killGroup(child.pid, "SIGKILL")
    })
  })
