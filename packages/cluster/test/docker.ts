// The Docker engine for the tests that play several hosts with containers (Hosts.test.ts): the `docker` CLI with a
// deadline on every call, and a sweep of everything a test created. Each object a test creates carries one label of
// its own, and its files are in one directory; a watchdog process removes both when the test's scope closes, and also when the test
// process dies without closing it (SIGKILL: the watchdog waits for the end of a pipe only this process writes,
// as test/postgres.ts's does).
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Data, Effect } from "effect"

/** Whether a Docker engine answers the CLI. */
export const dockerAnswers: boolean =
  spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { stdio: "ignore", timeout: 20_000 }).status === 0

export class DockerFailed extends Data.TaggedError("DockerFailed")<{
  readonly args: ReadonlyArray<string>
  readonly output: string
}> {
  override get message() {
    return `docker ${this.args.join(" ")}: ${this.output}`
  }
}

/** `docker ARGS`, its stdout trimmed; it fails with the CLI's output when it exits non-zero or overruns. */
export const docker = (args: ReadonlyArray<string>, timeoutMs = 120_000) =>
  Effect.callback<string, DockerFailed>((resume) => {
    const child = execFile(
      "docker",
      [...args],
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resume(
          error === null
            ? Effect.succeed(stdout.trim())
            : Effect.fail(new DockerFailed({ args, output: `${error.message}\n${stderr}`.slice(-4000) }))
        )
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Removes every container (with its anonymous volumes), volume, network and image labelled `label`, in that order. */
const sweepScript = [
  'docker ps -aq --filter "label=$0" | xargs -r docker rm -f -v',
  'docker volume ls -q --filter "label=$0" | xargs -r docker volume rm -f',
  'docker network ls -q --filter "label=$0" | xargs -r docker network rm',
  'docker images -q --filter "label=$0" | sort -u | xargs -r docker rmi -f'
]
  .map((line) => `${line} >/dev/null 2>&1`)
  .join("; ")

/**
 * A label for everything the test creates, and a directory for its files: swept when the scope closes (the watchdog
 * told so and its sweep awaited, up to 2 minutes) or when this process dies first.
 */
export const labelScoped = (name: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const value = `${name}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`
      const label = `testbed.test=${value}`
      const dir = mkdtempSync(join(tmpdir(), `testbed-${value}-`))
      // Detached: a signal to this process's group leaves the sweep to finish. Ended without "closing" (this process
      // died), a `docker run` it started may still create its container after the first sweep: a second follows.
      const watchdog: ChildProcess = spawn(
        "sh",
        [
          "-c",
          `last=; while read -r line; do last=$line; done; ${sweepScript}; [ "$last" = closing ] || { sleep 20; ${sweepScript}; }; rm -rf "$1"`,
          label,
          dir
        ],
        { detached: true, stdio: ["pipe", "ignore", "ignore"] }
      )
      watchdog.unref()
      if (watchdog.stdin instanceof Socket) watchdog.stdin.unref()
      return { label, value, dir, watchdog }
    }),
    ({ watchdog }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            if (watchdog.exitCode !== null || watchdog.signalCode !== null) return resolve()
            const timer = setTimeout(() => {
              watchdog.kill("SIGKILL")
              resolve()
            }, 120_000)
            watchdog.once("exit", () => {
              clearTimeout(timer)
              resolve()
            })
            watchdog.stdin?.end("closing\n")
          })
      )
  )
