// Network probes used by readiness checks and `service_responsive` assertions: one TCP connect, one HTTP GET,
// each bounded by its own timer so a black-holed port cannot hang a test; and a look at the kernel's socket
// table, which learns that a port listens without taking a connection from it.
import * as Http from "node:http"
import * as Net from "node:net"
import { type Duration, Effect, FileSystem, Schedule } from "effect"

/** Whether a TCP connection to host:port is accepted within `timeoutMs`. */
export const tcpOpen = (host: string, port: number, timeoutMs = 1000): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.connect({ host, port })
    const done = (open: boolean) => {
      socket.destroy()
      resume(Effect.succeed(open))
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    return Effect.sync(() => socket.destroy())
  })

/** The status code of `GET path`, or undefined when nothing answered within `timeoutMs`. */
export const httpStatus = (
  host: string,
  port: number,
  path: string,
  timeoutMs = 2000
): Effect.Effect<number | undefined> =>
  Effect.callback<number | undefined>((resume) => {
    const request = Http.get({ host, port, path, timeout: timeoutMs }, (response) => {
      response.resume()
      resume(Effect.succeed(response.statusCode))
    })
    request.once("timeout", () => {
      request.destroy()
      resume(Effect.succeed(undefined))
    })
    request.once("error", () => resume(Effect.succeed(undefined)))
    return Effect.sync(() => request.destroy())
  })

/**
 * Repeats `check` every `interval` until it returns true; false when `timeout` passes first.
 * Polling is the only way to learn that another process opened a port or wrote a line.
 */
export const pollUntil = <R>(
  check: Effect.Effect<boolean, never, R>,
  timeout: Duration.Duration,
  interval: Duration.Input = "25 millis"
): Effect.Effect<boolean, never, R> =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced(interval), until: (ok) => ok }),
    Effect.timeoutOption(timeout),
    Effect.map((result) => result._tag === "Some" && result.value)
  )

/** `0100007F:1F90` → 8080; the state column of a listening socket is `0A`. */
const listensOn = (table: string, port: number): boolean => {
  const hex = port.toString(16).toUpperCase().padStart(4, "0")
  return table.split("\n").some((line) => {
    const fields = line.trim().split(/\s+/)
    return fields[3] === "0A" && fields[1]?.endsWith(`:${hex}`) === true
  })
}

/**
 * Whether something listens on TCP `port` on this machine, read from the kernel's socket tables
 * (/proc/net/tcp, /proc/net/tcp6) without connecting; undefined when they cannot be read (not Linux).
 */
export const listening = (port: number): Effect.Effect<boolean | undefined, never, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    Effect.map(
      Effect.all(
        ["/proc/net/tcp", "/proc/net/tcp6"].map((table) => Effect.option(fs.readFileString(table))),
        { concurrency: 2 }
      ),
      (tables) => {
        const read = tables.flatMap((table) => (table._tag === "Some" ? [table.value] : []))
        return read.length === 0 ? undefined : read.some((table) => listensOn(table, port))
      }
    )
  )
