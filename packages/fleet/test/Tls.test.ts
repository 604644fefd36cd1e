// MQTT over TLS: a real Mosquitto with a TLS listener, the embedded broker's TLS listener, and password
// authentication over TLS without the password or the signing secret leaking into logs, events or feedback.
import { rmSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Cause, Effect, FileSystem, Logger, Redacted, References, Stream } from "effect"
import { Broker, MqttConnection } from "../src/index.ts"
import {
  agentProcess,
  exitOf,
  layer,
  mosquitto,
  outputOf,
  runMosquittoTests,
  type TlsFiles,
  tlsFiles
} from "./helpers.ts"
import { type BrokerAccess, secret, startAgents, startOperator, twoPipelinesOnThreeAgents } from "./scenarios.ts"

/** Fresh CA and server certificate for this test, removed with the Scope. */
const certificates = Effect.acquireRelease(Effect.sync(tlsFiles), (files: TlsFiles) =>
  Effect.sync(() => rmSync(files.dir, { recursive: true, force: true }))
)

/** A client that does not trust the test CA (only the system's roots) must not get a connection. */
const untrustingClientIsRefused = (url: string) =>
  Effect.gen(function* () {
    const refused = yield* MqttConnection.make({ url, clientId: "untrusting", tls: {} }).pipe(
      Effect.flatMap((c) => c.awaitConnected("5 seconds")),
      Effect.flip,
      Effect.scoped
    )
    assert.strictEqual(refused._tag, "BrokerUnreachable")
    assert.match(refused.message, /certificate/i)
  })

describe.runIf(runMosquittoTests)("fleet over TLS on Mosquitto", () => {
  it.live("runs two pipelines with mqtts:// and the CA; a client without the CA is refused", () =>
    Effect.gen(function* () {
      const files = yield* certificates
      const broker = yield* mosquitto(undefined, files)
      assert.match(broker.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/)
      yield* twoPipelinesOnThreeAgents({ url: broker.url, tls: { caFile: files.caFile } }, "json")
      yield* untrustingClientIsRefused(broker.url)
    }).pipe(Effect.provide(layer))
  )

  it.live(
    "authenticates with a password over TLS; neither the password nor the secret reaches logs, events or feedback",
    () => {
      const logs: Array<string> = []
      const capture = Logger.make<unknown, void>(({ cause, logLevel, message }) => {
        logs.push(`${logLevel} ${JSON.stringify(message)}${cause.reasons.length > 0 ? ` ${Cause.pretty(cause)}` : ""}`)
      })
      const password = "tls-pa55word-7b1f"
      return Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const files = yield* certificates
        const broker = yield* mosquitto({ username: "fleet", password }, files)
        const bus = yield* EventBus.EventBus
        const events: Array<unknown> = []
        const subscription = yield* bus.subscribe
        yield* Effect.forkScoped(Stream.runForEach(subscription, (e) => Effect.sync(() => events.push(e))))
        const feedbackFile = join(files.dir, "feedback.jsonl")
        const access: BrokerAccess = {
          url: broker.url,
          username: "fleet",
          password: Redacted.make(password),
          tls: { caFile: files.caFile }
        }
        // An agent process too: its secrets come from files, its output must not show them.
        const passwordFile = join(files.dir, "password")
        const secretFile = join(files.dir, "secret")
        yield* fs.writeFileString(passwordFile, `${password}\n`)
        yield* fs.writeFileString(secretFile, `${Redacted.value(secret)}\n`)
        const agent = yield* agentProcess([
          "--id",
          "cli-agent",
          "--broker",
          broker.url,
          "--ca-file",
          files.caFile,
          "--username",
          "fleet",
          "--password-file",
          passwordFile,
          "--secret-file",
          secretFile
        ])
        const agentOutput = outputOf(agent)
        const operator = yield* startOperator(access, { expectAgents: 2, feedbackFile })
        yield* startAgents(access, ["sut-a"])
        const registered = yield* operator.awaitRegistrations
        assert.deepStrictEqual([...registered].sort(), ["cli-agent", "sut-a"], agentOutput.text())
        const summary = yield* operator.runPipelines([
          { name: "p", steps: ["echo over tls", "sh -c 'echo err >&2; exit 3'"] }
        ])
        assert.deepStrictEqual(summary.steps.map((s) => [s.agent, s.state, s.response?.output]).sort(), [
          ["cli-agent", "failed", ""],
          ["cli-agent", "succeeded", "over tls\n"],
          ["sut-a", "failed", ""],
          ["sut-a", "succeeded", "over tls\n"]
        ])
        const refused = yield* MqttConnection.make({
          ...access,
          clientId: "intruder",
          password: Redacted.make("no")
        }).pipe(
          Effect.flatMap((c) => c.awaitConnected("3 seconds")),
          Effect.flip,
          Effect.scoped
        )
        yield* Effect.logWarning(refused.message)
        const feedback = yield* fs.readFileString(feedbackFile)
        // Something of each was written (a test that finds nothing in nothing proves nothing).
        assert.strictEqual(feedback.trim().split("\n").length, 4)
        assert.isAtLeast(events.length, 8)
        assert.isTrue(logs.some((line) => line.includes("registered")))
        assert.include(agentOutput.text(), "cli-agent")
        const haystacks = { logs: logs.join("\n"), events: JSON.stringify(events), feedback, agent: agentOutput.text() }
        for (const [where, text] of Object.entries(haystacks)) {
          assert.notInclude(text, password, `password in ${where}`)
          assert.notInclude(text, Redacted.value(secret), `secret in ${where}`)
        }
        agent.kill("SIGTERM")
        yield* exitOf(agent)
      }).pipe(
        Effect.provide(layer),
        Effect.provide(Logger.layer([capture])),
        Effect.provideService(References.MinimumLogLevel, "All")
      )
    },
    60_000
  )
})

describe("fleet over TLS on the embedded broker", () => {
  it.live("runs two pipelines on its TLS listener; a client without the CA is refused", () =>
    Effect.gen(function* () {
      const files = yield* certificates
      const broker = yield* Broker.embedded({
        port: 0,
        tls: { certFile: files.certFile, keyFile: files.keyFile, port: 0 }
      })
      assert.strictEqual(broker.tlsUrl, `mqtts://127.0.0.1:${broker.tlsPort}`)
      yield* twoPipelinesOnThreeAgents({ url: broker.tlsUrl!, tls: { caFile: files.caFile } }, "json")
      yield* untrustingClientIsRefused(broker.tlsUrl!)
    }).pipe(Effect.provide(layer))
  )

  it.live("fails to start with a key file that does not exist, naming it", () =>
    Effect.gen(function* () {
      const files = yield* certificates
      const error = yield* Broker.embedded({
        port: 0,
        tls: { certFile: files.certFile, keyFile: join(files.dir, "missing.key"), port: 0 }
      }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "BrokerStartFailed")
      assert.include(error.message, "missing.key")
    }).pipe(Effect.provide(layer))
  )
})
