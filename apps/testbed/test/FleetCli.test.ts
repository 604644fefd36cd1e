// `testbed fleet …` as the child process a user starts: the exit code and message of a refused password, `exit`
// in the operator's real-time mode with stdin left open, and `fleet broker`'s TLS flags. Brokers and agents run in
// this process from the library; the fleet package tests the same behaviours through its own agent entry point.
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { LocalRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Agent, Broker, MqttConnection, Security } from "@testbed/fleet"
import { Certificates } from "@testbed/plugins"
import { Effect, Layer, Redacted, Schedule, type Scope } from "effect"
import { bin } from "./support.ts"

const layer = LocalRunner.layer.pipe(
  Layer.provideMerge(EventBus.EventBus.layer),
  Layer.provideMerge(NodeServices.layer)
)

const secret = randomBytes(24).toString("hex")

const exitOf = (child: ChildProcess) =>
  Effect.callback<number | null>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

/** `testbed …` with a pipe on stdin and its output collected; SIGKILLed with the Scope unless it ended. */
const testbed = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {}
): Effect.Effect<{ readonly child: ChildProcess; readonly text: () => string }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      // process.execPath: the node shim in node_modules/.bin would not pass a signal on.
      const child = spawn(process.execPath, [bin, ...args], {
        env: { ...process.env, ...env },
        stdio: ["pipe", "pipe", "pipe"]
      })
      let text = ""
      const collect = (chunk: Buffer) => {
        text += chunk.toString("utf8")
      }
      child.stdout.on("data", collect)
      child.stderr.on("data", collect)
      return { child, text: () => text }
    }),
    ({ child }) =>
      Effect.gen(function* () {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        yield* exitOf(child)
      })
  )

const waitForText = (output: { readonly text: () => string }, pattern: RegExp) =>
  Effect.sync(() => pattern.exec(output.text())?.[0]).pipe(
    Effect.repeat({ until: (found) => found !== undefined, schedule: Schedule.spaced("20 millis") }),
    Effect.timeout("60 seconds")
  )

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "testbed-fleet-cli-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("testbed fleet agent", () => {
  it.live(
    "exits non-zero with the broker and the refusal when the password is refused",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.embedded({ port: 0, username: "fleet", password: Redacted.make("right") })
        const agent = yield* testbed(["fleet", "agent", "--broker", broker.url, "--id", "cli", "--username", "fleet"], {
          MQTT_PASSWORD: "not the password",
          TESTBED_FLEET_SECRET: secret
        })
        const code = yield* exitOf(agent.child).pipe(Effect.timeout("60 seconds"))
        assert.notStrictEqual(code, 0)
        assert.include(agent.text(), `the MQTT broker at ${broker.url} refused the connection`)
        assert.notInclude(agent.text(), "not the password")
      }).pipe(Effect.provide(layer)),
    90_000
  )
})

describe("testbed fleet operator", () => {
  it.live(
    "ends at `exit` in real-time mode while stdin stays open",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.embedded({ port: 0 })
        yield* Agent.start({
          ids: ["rt"],
          connection: { url: broker.url },
          signing: Security.signed(Redacted.make(secret))
        })
        const operator = yield* testbed(
          ["fleet", "operator", "--broker", broker.url, "--expect", "1", "--no-feedback", "--pipeline", "echo piped"],
          { TESTBED_FLEET_SECRET: secret }
        )
        yield* waitForText(operator, /real-time mode/)
        // Written, never ended: the pipe stays open as a terminal would.
        operator.child.stdin!.write("echo live\nexit\n")
        const code = yield* exitOf(operator.child).pipe(Effect.timeout("60 seconds"))
        assert.strictEqual(code, 0, operator.text())
        assert.include(operator.text(), "rt: echo live -> succeeded")
        assert.include(operator.text(), "all steps succeeded")
        assert.isFalse(operator.child.stdin!.writableEnded)
      }).pipe(Effect.provide(layer)),
    90_000
  )
})

describe("testbed fleet broker", () => {
  it.live(
    "`--tls-cert --tls-key --tls-port 0` serves mqtts:// to a client trusting the CA",
    () =>
      Effect.gen(function* () {
        const files = yield* Certificates.selfSigned(yield* tempDir)
        const args = ["--port", "0", "--tls-cert", files.cert, "--tls-key", files.key, "--tls-port", "0"]
        const broker = yield* testbed(["fleet", "broker", ...args])
        const url = yield* waitForText(broker, /mqtts:\/\/127\.0\.0\.1:\d+/)
        const connection = yield* MqttConnection.make({ url: url!, clientId: "trusting", tls: { caFile: files.ca } })
        yield* connection.awaitConnected("10 seconds")
        // A client that does not trust the certificate (only the system's roots) must not get a connection.
        const refused = yield* MqttConnection.make({ url: url!, clientId: "untrusting", tls: {} }).pipe(
          Effect.flatMap((c) => c.awaitConnected("5 seconds")),
          Effect.flip,
          Effect.scoped
        )
        assert.strictEqual(refused._tag, "BrokerUnreachable")
        assert.match(refused.message, /certificate/i)
      }).pipe(Effect.provide(layer)),
    60_000
  )
})
