// The agent under attack and abuse, on the embedded broker: garbage, forbidden commands, forged and replayed ones.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Option, Queue, Redacted, Schedule } from "effect"
import { Broker, MqttConnection, Protocol, Security } from "../src/index.ts"
import { layer, tempDir } from "./helpers.ts"
import { connectionOf, secret, startAgents, startOperator } from "./scenarios.ts"

const topics = Protocol.defaultTopics

/** A deterministic generator, so a failure replays. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const garbage = (random: () => number, target: string): string => {
  const pick = Math.floor(random() * 8)
  const bytes = () =>
    Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256))).toString("utf8")
  switch (pick) {
    case 0:
      return bytes()
    case 1:
      return `${target}|${bytes()}`
    case 2:
      return JSON.stringify({ client_id: target })
    case 3:
      return JSON.stringify({ client_id: target, command: [bytes()] })
    case 4:
      return JSON.stringify({ client_id: Math.floor(random() * 1000), command: "id" })
    case 5:
      return JSON.stringify([target, "id"])
    case 6:
      return `{"client_id": "${target}", "command": ${"[".repeat(Math.floor(random() * 500))}`
    default:
      return ["null", "", "{}", "true", '"id"', "1e999", '{"client_id":null,"command":null}'][Math.floor(random() * 7)]!
  }
}

/** Waits until a condition on live state holds (polling state, not sleeping for a guessed time). */
const eventually = <A>(effect: Effect.Effect<A>, until: (a: A) => boolean) =>
  Effect.repeat(effect, { until, schedule: Schedule.spaced("20 millis") }).pipe(Effect.timeout("60 seconds"))

describe("Agent", () => {
  it.live(
    "survives 10,000 random malformed payloads, then still runs a valid command",
    () =>
      Effect.gen(function* () {
        const broker = yield* Broker.embedded({ port: 0 })
        const operator = yield* startOperator(broker, { expectAgents: 1 })
        const [agent] = yield* startAgents(broker, ["sut-a"])
        yield* operator.awaitRegistrations
        const attacker = yield* MqttConnection.make({ ...connectionOf(broker), clientId: "attacker" })
        yield* attacker.awaitConnected("10 seconds")
        const random = prng(5)
        const payloads = Array.from({ length: 10_000 }, () => garbage(random, "sut-a"))
        yield* Effect.forEach(payloads, (payload) => attacker.publish(topics.command, payload, 1), { concurrency: 100 })
        const stats = yield* eventually(agent!.stats, (s) => s.received >= 10_000)
        assert.isAtLeast(stats.malformed, 5000)
        assert.strictEqual(stats.executed, 0)
        const [report] = yield* operator.runCommand("echo still alive")
        assert.strictEqual(report!.state, "succeeded")
        assert.strictEqual(report!.response?.output, "still alive\n")
      }).pipe(Effect.provide(layer)),
    120_000
  )

  it.live("refuses commands outside its allowlist and says so", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const operator = yield* startOperator(broker, { expectAgents: 1, onFailure: "continue" })
      yield* startAgents(broker, ["sut-a"], { allow: ["echo *", "true"] })
      yield* operator.awaitRegistrations
      const summary = yield* operator.runPipelines([
        { name: "p", steps: ["echo fine", "cat /etc/passwd", "echo a; id", "echo $(id)", "true"] }
      ])
      assert.deepStrictEqual(
        summary.steps.map((s) => s.state),
        ["succeeded", "refused", "refused", "refused", "succeeded"]
      )
      const refused = summary.steps[1]!.response!
      assert.strictEqual(refused.status, "refused")
      assert.include(refused.refusal!, "not-allowed")
      assert.strictEqual(refused.exit_code, null)
    }).pipe(Effect.provide(layer))
  )

  it.live("refuses unsigned, forged and stale commands, and never runs a replay twice", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      const mallory = yield* MqttConnection.make({ ...connectionOf(broker), clientId: "mallory" })
      yield* mallory.awaitConnected("10 seconds")
      yield* mallory.subscribe([topics.response, topics.registration])
      const [agent] = yield* startAgents(broker, ["sut-a"])
      // An agent registers only once it has subscribed: its registration says it is listening.
      while (true) {
        const inbound = yield* Queue.take(mallory.inbound).pipe(Effect.timeout("30 seconds"))
        if (inbound._tag === "Message" && inbound.topic === topics.registration) break
      }
      const dir = yield* tempDir("fleet-replay-")
      const marker = join(dir, "ran")
      const command = `echo ran >> ${marker}`
      const now = yield* Clock.currentTimeMillis
      const good = Security.sign(Security.signed(secret), { client_id: "sut-a", command }, "cmd-1", now)
      const forged = Security.sign(
        Security.signed(Redacted.make("guessed")),
        { client_id: "sut-a", command },
        "cmd-2",
        now
      )
      const stale = Security.sign(Security.signed(secret), { client_id: "sut-a", command }, "cmd-3", now - 10 * 60_000)
      const send = (m: Protocol.CommandMessage) => mallory.publish(topics.command, JSON.stringify(m), 1)
      yield* send({ client_id: "sut-a", command })
      yield* send(forged)
      yield* send({ ...good, command: `${command}; id` })
      yield* send(stale)
      yield* send(good)
      const answers: Array<Protocol.ResponseMessage> = []
      const collect = (n: number) =>
        Effect.gen(function* () {
          while (answers.length < n) {
            const inbound = yield* Queue.take(mallory.inbound).pipe(Effect.timeout("30 seconds"))
            if (inbound._tag !== "Message" || inbound.topic !== topics.response) continue
            const decoded = Protocol.decodeResponse(inbound.payload)
            if (Option.isSome(decoded)) answers.push(decoded.value)
          }
        })
      yield* collect(5)
      // Replayed after it ran: answered again from memory, never run a second time.
      yield* send(good)
      yield* collect(6)
      // A late copy of a command it ran (an MQTT redelivery) is a duplicate even once stale, not a refusal.
      yield* send(Security.sign(Security.signed(secret), { client_id: "sut-a", command }, "cmd-1", now - 10 * 60_000))
      yield* collect(7)
      const refusals = answers.filter((a) => a.status === "refused").map((a) => a.refusal!.split(":")[0])
      assert.deepStrictEqual(refusals, ["unsigned", "forged", "forged", "stale"])
      const ran = answers.filter((a) => a.status === "succeeded")
      assert.strictEqual(ran.length, 3)
      assert.deepStrictEqual(ran[0], ran[1])
      assert.deepStrictEqual(ran[0], ran[2])
      assert.strictEqual(readFileSync(marker, "utf8"), "ran\n")
      const stats = yield* agent!.stats
      assert.strictEqual(stats.executed, 1)
      assert.strictEqual(stats.duplicates, 2)
      assert.strictEqual(stats.refused, 4)
    }).pipe(Effect.provide(layer))
  )
})
