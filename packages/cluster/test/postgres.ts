// A throwaway Postgres for the tests: initdb into a temp directory and start it on 127.0.0.1 and a free port, as
// the `postgres` user when this runs as root (`Postgres.reachableFrom`: also on an address of a network the test
// made, for clients on that network only) (Postgres refuses to run as root); `pg_ctl -m immediate stop` and the
// directory removed afterwards, and by a watchdog process when the test process dies without a chance to (SIGKILL).
// Found in /usr/lib/postgresql/*/bin (Debian's `postgresql`).
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import { LocalhostEnvironment } from "@testbed/plugins"

/** The directory holding initdb and pg_ctl, if Postgres is installed. */
export const postgresBin: string | undefined = (() => {
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root)
    .filter((version) => existsSync(join(root, version, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin")
})()

/** Under CI a missing Postgres fails the tests; locally they are skipped. */
export const skipWithoutPostgres = postgresBin === undefined && process.env.CI === undefined

/** A port the kernel says is free on 127.0.0.1 (the localhost environment's own probe). */
export const freePort = LocalhostEnvironment.allocatePort("postgres")

/** `command args…` as the `postgres` user when this runs as root. */
const asPostgresArgv = (command: string, args: ReadonlyArray<string>): ReadonlyArray<string> =>
  process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", command, ...args] : [command, ...args]

// initdb took over a minute at load 27.
const asPostgres = (command: string, args: ReadonlyArray<string>) => {
  const [program, ...rest] = asPostgresArgv(command, args)
  return execFileSync(program!, rest, { stdio: "pipe", timeout: 180_000 })
}

/**
 * Stops the server in `dir` and removes `dir` once this process has ended, however it ended: the watchdog waits for
 * the end of its stdin, a pipe whose only writer is this process (Node's pipes are close-on-exec: no other child
 * holds it), and the kernel closes it when this process dies, SIGKILL included. It runs in a session of its own
 * (`detached`), so a signal to this process's group does not take it with it; it keeps this process's user (root
 * can remove a directory the `postgres` user wrote into). Killed when the server is stopped the usual way.
 */
const watchdog = (dir: string): ChildProcess => {
  const stop = asPostgresArgv(join(postgresBin!, "pg_ctl"), ["-D", join(dir, "data"), "-m", "immediate", "stop"])
  const script = 'while read -r line; do :; done; "$@" >/dev/null 2>&1; rm -rf "$0"'
  const child = spawn("sh", ["-c", script, dir, ...stop], { detached: true, stdio: ["pipe", "ignore", "ignore"] })
  // The test process must not wait for it (nor for the pipe) to exit.
  child.unref()
  if (child.stdin instanceof Socket) child.stdin.unref()
  return child
}

const startOptions = (dir: string, port: number, listen = "127.0.0.1") => [
  "-D",
  join(dir, "data"),
  "-l",
  join(dir, "log"),
  "-o",
  `-p ${port} -k ${dir} -c listen_addresses=${listen} -c fsync=off -c max_connections=200`,
  "-w",
  "start"
]

/** Stops the instance (`-m fast`: open connections are cut). */
export const stopPostgres = (postgres: { readonly dir: string }) =>
  Effect.sync(() => asPostgres(join(postgresBin!, "pg_ctl"), ["-D", join(postgres.dir, "data"), "-m", "fast", "stop"]))

/** Starts a stopped instance again, on the same port. */
export const startPostgres = (postgres: { readonly dir: string; readonly port: number; readonly listen?: string }) =>
  Effect.sync(() =>
    asPostgres(join(postgresBin!, "pg_ctl"), startOptions(postgres.dir, postgres.port, postgres.listen))
  )

/** A network whose clients may connect: the server also listens on `address` (this host's on that network). */
export interface Reachable {
  readonly address: string
  /** CIDR: the only clients, besides this host's own, that pg_hba.conf lets in. */
  readonly subnet: string
}

export class Postgres extends Context.Service<
  Postgres,
  { readonly url: string; readonly dir: string; readonly port: number; readonly listen: string }
>()("test/Postgres") {
  static readonly layer = Layer.effect(
    Postgres,
    Effect.suspend(() => acquire(undefined))
  )

  /** The server on loopback and on `network.address`; `url` is the one clients on that network use. */
  static readonly reachableFrom = (network: Reachable) => Layer.effect(Postgres, acquire(network))
}

const acquire = (network: Reachable | undefined) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      if (postgresBin === undefined) {
        return yield* Effect.die(new Error("Postgres is not installed (Debian package postgresql)"))
      }
      const bin = postgresBin
      const port = yield* freePort
      const dir = mkdtempSync(join(tmpdir(), "testbed-pg-"))
      if (process.getuid?.() === 0) {
        const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim())
        const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim())
        chownSync(dir, uid, gid)
      }
      // Before initdb: from here on there is something to clean up.
      const guard = watchdog(dir)
      const listen = network === undefined ? "127.0.0.1" : `127.0.0.1,${network.address}`
      yield* Effect.sync(() => {
        asPostgres(join(bin, "initdb"), ["-D", join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync"])
        if (network !== undefined)
          // samehost: this host's own clients, which reach `address` from whichever of its addresses the kernel picks.
          appendFileSync(
            join(dir, "data", "pg_hba.conf"),
            `host all all ${network.subnet} trust\nhost all all samehost trust\n`
          )
        asPostgres(join(bin, "pg_ctl"), startOptions(dir, port, listen))
      }).pipe(Effect.onError(() => Effect.sync(() => guard.stdin?.end())))
      const host = network?.address ?? "127.0.0.1"
      return { url: `postgres://postgres@${host}:${port}/postgres`, dir, port, listen, guard }
    }),
    ({ dir, guard }) =>
      Effect.sync(() => {
        if (postgresBin !== undefined) {
          Effect.runSync(
            Effect.ignore(
              Effect.try(() =>
                asPostgres(join(postgresBin, "pg_ctl"), ["-D", join(dir, "data"), "-m", "immediate", "stop"])
              )
            )
          )
        }
        rmSync(dir, { recursive: true, force: true })
        // Nothing left for it to do: killed before its pipe closes, so it does not run the stop again.
        guard.kill("SIGKILL")
        guard.stdin?.destroy()
      })
  )
