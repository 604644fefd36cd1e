// Connection failures say what happened: a refused password fails at once (AuthRefused, naming the broker and the
// refusal), an unreachable broker is retried with a growing backoff and every attempt is logged, the first at once.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, Redacted, References, Schedule } from "effect"
import { Broker, Operator, Security } from "../src/index.ts"
import { type BrokerKind, credentials, startBroker } from "./brokers.ts"
import { agentProcess, exitOf, freePort, layer, outputOf, runMosquittoTests } from "./helpers.ts"
import { connectionOf, secret, startAgents, startOperator } from "./scenarios.ts"

const kinds: ReadonlyArray<BrokerKind> = runMosquittoTests
  ? ["embedded with a password", "mosquitto with a password"]
  : ["embedded with a password"]

/** Log lines at every level, captured for assertions. */
const capturing = () => {
  const lines: Array<string> = []
  const logger = Logger.make<unknown, void>(({ message }) => {
    lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
  })
  const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(Effect.provide(Logger.layer([logger])), Effect.provideService(References.MinimumLogLevel, "All"))
  return { lines, provide }
}

const eventually = <A>(effect: Effect.Effect<A>, until: (a: A) => boolean) =>
  Effect.repeat(effect, { until, schedule: Schedule.spaced("20 millis") }).pipe(Effect.timeout("30 seconds"))

describe.each(kinds)("a refused password on %s", (kind) => {
  it.live("fails an agent and an operator at once with AuthRefused, naming the broker", () =>
    Effect.gen(function* () {
      const broker = yield* startBroker(kind)
      const wrong = { ...broker, password: Redacted.make("not the password") }
      const agent = yield* startAgents(wrong, ["rejected"]).pipe(Effect.flip, Effect.timeout("10 seconds"))
      const operator = yield* startOperator(wrong).pipe(Effect.flip, Effect.timeout("10 seconds"))
      for (const error of [agent, operator] as ReadonlyArray<{ readonly _tag?: string; readonly message?: string }>) {
        assert.strictEqual(error._tag, "AuthRefused")
        assert.include(error.message, broker.url)
        assert.match(
          error.message!,
          /refused the connection: Connection refused: (Not authorized|Bad username or password)/
        )
        assert.notInclude(error.message, "not the password")
      }
    }).pipe(Effect.provide(layer))
  )

  it.live(
    "makes an agent process exit 2 (the credentials are wrong) with the broker and the refusal",
    () =>
      Effect.gen(function* () {
        const broker = yield* startBroker(kind)
        const agent = yield* agentProcess(["--broker", broker.url, "--id", "cli", "--username", credentials.username], {
          MQTT_PASSWORD: "not the password",
          TESTBED_FLEET_SECRET: Redacted.value(secret)
        })
        const output = outputOf(agent)
        const code = yield* exitOf(agent).pipe(Effect.timeout("60 seconds"))
        assert.notStrictEqual(code, 0)
        assert.strictEqual(code, 2, output.text())
        assert.include(output.text(), `the MQTT broker at ${broker.url} refused the connection`)
        assert.notInclude(output.text(), "not the password")
      }).pipe(Effect.provide(layer)),
    90_000
  )
})

describe("an unreachable broker", () => {
  it.live("an agent retries with a growing backoff, logging every attempt, and connects once the broker is up", () => {
    const log = capturing()
    return Effect.gen(function* () {
      const port = yield* freePort
      const url = `mqtt://127.0.0.1:${port}`
      const [agent] = yield* startAgents({ url }, ["patient"])
      const attempts = () =>
        log.lines.flatMap((line) => {
          const m = /cannot connect to (\S+) \((.*)\); attempt (\d+) failed, next in (.+)$/.exec(line)
          return m === null ? [] : [{ url: m[1], reason: m[2]!, attempt: Number(m[3]), next: m[4]! }]
        })
      const seen = yield* eventually(Effect.sync(attempts), (a) => a.length >= 4)
      assert.strictEqual(seen[0]!.url, url)
      assert.match(seen[0]!.reason, /ECONNREFUSED/)
      assert.deepStrictEqual(
        seen.slice(0, 4).map((a) => a.attempt),
        [1, 2, 3, 4]
      )
      // 100 ms doubled each time (see connectionOf).
      assert.deepStrictEqual(
        seen.slice(0, 4).map((a) => a.next),
        ["100ms", "200ms", "400ms", "800ms"]
      )
      yield* Broker.embedded({ port })
      const operator = yield* startOperator({ url }, { expectAgents: 1 })
      assert.deepStrictEqual(yield* operator.awaitRegistrations, ["patient"])
      yield* agent!.awaitAcknowledged.pipe(Effect.timeout("30 seconds"))
    }).pipe(log.provide, Effect.provide(layer))
  })

  it.live("an operator reports the refused connection of its first attempt while it goes on trying", () => {
    const log = capturing()
    return Effect.gen(function* () {
      const port = yield* freePort
      const url = `mqtt://127.0.0.1:${port}`
      const starting = yield* Effect.forkChild(
        Operator.start({
          connection: { ...connectionOf({ url }), reconnectPeriod: "5 seconds" },
          signing: Security.signed(secret),
          connectTimeout: "2 minutes"
        })
      )
      yield* eventually(
        Effect.sync(() => log.lines.some((line) => line.includes(url) && line.includes("ECONNREFUSED"))),
        (found) => found
      )
      assert.isUndefined(starting.pollUnsafe(), "the operator is still waiting for its broker")
      yield* Fiber.interrupt(starting)
    }).pipe(log.provide, Effect.provide(layer))
  })
})
