// `--metrics-port` of the long-running commands: `testbed fleet operator` (broker and agent in this process, the
// operator as the child process a user starts) and `testbed replay serve` (a client in this process). Each is
// scraped over HTTP while it runs.
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createConnection } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { LocalRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Agent, Broker, Security } from "@testbed/fleet"
import { Effect, Layer, Schedule } from "effect"
import { bin } from "./support.ts"
import { LocalhostEnvironment } from "@testbed/plugins"

const layer = LocalRunner.layer.pipe(
  Layer.provideMerge(EventBus.EventBus.layer),
  Layer.provideMerge(NodeServices.layer)
)

/** A port the kernel says is free on 127.0.0.1 (the localhost environment's own probe). */
const freePort = LocalhostEnvironment.allocatePort("metrics endpoint")

/** The CLI as a child with its stdin open (the operator's real-time mode reads it); killed when the scope ends. */
const started = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [bin, ...args])
      const output = { stdout: "", stderr: "" }
      child.stdout.on("data", (chunk) => {
        output.stdout += String(chunk)
      })
      child.stderr.on("data", (chunk) => {
        output.stderr += String(chunk)
      })
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      return { child, output, exited }
    }),
    ({ child }) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  )

/** The metrics text once `until` holds for it (retried every 200 ms, within 30 s). */
const scrapeUntil = (port: number, until: (text: string) => boolean) =>
  Effect.tryPromise(() =>
    fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) }).then((r) => r.text())
  ).pipe(Effect.filterOrFail(until), Effect.retry(Schedule.spaced("200 millis")), Effect.timeout("30 seconds"))

describe("--metrics-port of the long-running commands", () => {
  it.live(
    "fleet operator: agents connected and commands sent, answered and failed, scraped while it runs",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.embedded({ port: 0 })
        yield* Agent.start({ ids: ["sut-1"], connection: { url: broker.url }, signing: Security.compat })
        const metricsPort = yield* freePort
        const operator = yield* started([
          ...["fleet", "operator", "--broker", broker.url, "--compat", "--expect", "1", "--no-feedback"],
          ...["--pipeline", "echo hi; false", "--metrics-port", String(metricsPort)]
        ])
        const text = yield* scrapeUntil(metricsPort, (body) =>
          /^testbed_fleet_commands_answered_total\{status="failed"\} 1$/m.test(body)
        ).pipe(Effect.tapError(() => Effect.logError(operator.output.stderr)))
        assert.match(text, /^testbed_fleet_agents_connected 1$/m)
        assert.match(text, /^testbed_fleet_registrations_total 1$/m)
        assert.match(text, /^testbed_fleet_commands_sent_total 2$/m)
        assert.match(text, /^testbed_fleet_commands_answered_total\{status="passed"\} 1$/m)
        assert.match(text, /^testbed_fleet_command_duration_seconds_count 2$/m)
        // Real-time mode: `exit` on stdin ends it, and the endpoint with it.
        operator.child.stdin.end("exit\n")
        const code = yield* Effect.promise(() => operator.exited)
        assert.strictEqual(code, 1, operator.output.stderr)
        const gone = yield* Effect.tryPromise(() => fetch(`http://127.0.0.1:${metricsPort}/metrics`)).pipe(Effect.flip)
        assert.isDefined(gone)
      }).pipe(Effect.scoped, Effect.provide(layer)),
    60_000
  )

  it.live(
    "replay serve: connections, round trips and bytes replayed, scraped between two connections",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "testbed-replay-metrics-"))),
          (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
        )
        const script = join(dir, "ping.json")
        writeFileSync(
          script,
          JSON.stringify({
            recorded_script: { type: "compound", scripts: [{ type: "script", command: "PING\n", response: "PONG!\n" }] }
          })
        )
        const metricsPort = yield* freePort
        const server = yield* started([
          ...["replay", "serve", "-i", script, "-l", "127.0.0.1:0", "-n", "2"],
          ...["--metrics-port", String(metricsPort)]
        ])
        // Before any client: the counters are not there yet, the endpoint is.
        yield* scrapeUntil(metricsPort, () => true)
        const port = yield* Effect.sync(() => /listening on [\d.]+:(\d+)/.exec(server.output.stdout)?.[1]).pipe(
          Effect.filterOrFail((found) => found !== undefined),
          Effect.retry(Schedule.spaced("100 millis")),
          Effect.timeout("30 seconds"),
          Effect.map(Number)
        )
        const exchange = Effect.callback<string>((resume) => {
          const socket = createConnection(port, "127.0.0.1", () => socket.write("PING\n"))
          let answer = ""
          socket.on("data", (chunk) => {
            answer += String(chunk)
            if (answer.endsWith("\n")) socket.end()
          })
          socket.on("close", () => resume(Effect.succeed(answer)))
          return Effect.sync(() => socket.destroy())
        })
        assert.strictEqual(yield* exchange, "PONG!\n")
        const text = yield* scrapeUntil(metricsPort, (body) => /^testbed_replay_round_trips_total 1$/m.test(body))
        assert.match(text, /^testbed_replay_connections_total 1$/m)
        assert.match(text, /^testbed_replay_bytes_replayed_total 6$/m)
        assert.match(text, /^testbed_replay_bytes_received_total 5$/m)
        assert.strictEqual(yield* exchange, "PONG!\n")
        assert.strictEqual(yield* Effect.promise(() => server.exited), 0, server.output.stderr)
      }).pipe(Effect.scoped),
    60_000
  )
})
