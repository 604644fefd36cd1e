// Network probes used by readiness checks and `service_responsive` assertions: one TCP connect, one HTTP GET,
// each bounded by its own timer so a black-holed port cannot hang a test.
import * as Http from "node:http"
import * as Net from "node:net"
import { type Duration, Effect, Schedule } from "effect"

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
