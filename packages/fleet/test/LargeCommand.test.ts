// A command the agent cannot start — too large for its limit, or refused by the kernel at spawn (E2BIG) — is
// answered with a typed failure and the agent goes on serving; a refusal of a huge command echoes a capped prefix.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, Option, Queue, References } from "effect"
import { MqttConnection, Protocol } from "../src/index.ts"
import { brokerKinds, startBroker } from "./brokers.ts"
import { layer } from "./helpers.ts"
import { connectionOf, startAgents, startOperator } from "./scenarios.ts"

const topics = Protocol.defaultTopics
const mebibyte = 1024 * 1024
const huge = `echo ${"x".repeat(mebibyte)}`

describe.each(brokerKinds)("large commands on %s", (kind) => {
  it.live("a 1 MiB command is answered with CommandTooLarge, and the next command runs", () =>
    Effect.gen(function* () {
      const broker = yield* startBroker(kind)
      const operator = yield* startOperator(broker, { expectAgents: 1, onFailure: "continue" })
      yield* startAgents(broker, ["big"])
      yield* operator.awaitRegistrations
      const summary = yield* operator.runPipelines([{ name: "p", steps: [huge, "echo next"] }])
      const [tooLarge, next] = summary.steps
      assert.strictEqual(tooLarge!.state, "failed")
      assert.strictEqual(tooLarge!.response?.status, "error")
      assert.strictEqual(tooLarge!.response?.failure, "CommandTooLarge")
      assert.match(tooLarge!.response!.error, /^Failed to execute command: the command is \d+ bytes/)
      // The answer names the command by a capped prefix, not by a copy of it.
      assert.isBelow(JSON.stringify(tooLarge!.response).length, 4096)
      assert.deepStrictEqual([next!.state, next!.response?.output], ["succeeded", "next\n"])
    }).pipe(Effect.provide(layer))
  )

  it.live("a spawn the kernel refuses (E2BIG) is answered with CommandSpawnFailed, and the next command runs", () =>
    Effect.gen(function* () {
      const broker = yield* startBroker(kind)
      const operator = yield* startOperator(broker, { expectAgents: 1, onFailure: "continue" })
      // The agent's own limit raised past the kernel's, so the spawn itself fails.
      yield* startAgents(broker, ["big"], { maxCommandBytes: 4 * mebibyte })
      yield* operator.awaitRegistrations
      const summary = yield* operator.runPipelines([{ name: "p", steps: [huge, "echo next"] }])
      const [refused, next] = summary.steps
      assert.strictEqual(refused!.state, "failed")
      assert.strictEqual(refused!.response?.failure, "CommandSpawnFailed")
      assert.include(refused!.response!.error, "E2BIG")
      assert.deepStrictEqual([next!.state, next!.response?.output], ["succeeded", "next\n"])
    }).pipe(Effect.provide(layer))
  )

  it.live(
    "refusing a 20 MB unsigned command echoes and logs a capped prefix of it",
    () => {
      const logs: Array<string> = []
      const capture = Logger.make<unknown, void>(({ message }) => {
        logs.push(JSON.stringify(message))
      })
      return Effect.gen(function* () {
        const broker = yield* startBroker(kind)
        yield* startAgents(broker, ["big"])
        const mallory = yield* MqttConnection.make({ ...connectionOf(broker), clientId: "mallory" })
        yield* mallory.awaitConnected("10 seconds")
        yield* mallory.subscribe([topics.response, topics.registration])
        // Its registration says it is listening.
        while (true) {
          const inbound = yield* Queue.take(mallory.inbound).pipe(Effect.timeout("30 seconds"))
          if (inbound._tag === "Message" && inbound.topic === topics.registration) break
        }
        const command = `echo ${"y".repeat(20 * mebibyte)}`
        yield* mallory.publish(
          topics.command,
          JSON.stringify({ client_id: "big", command, command_id: "z".repeat(mebibyte) })
        )
        const answer = yield* Effect.gen(function* () {
          while (true) {
            const inbound = yield* Queue.take(mallory.inbound)
            if (inbound._tag === "Message" && inbound.topic === topics.response) return inbound.payload
          }
        }).pipe(Effect.timeout("60 seconds"))
        assert.isBelow(answer.length, 4096)
        const response = Option.getOrThrow(Protocol.decodeResponse(answer))
        assert.strictEqual(response.status, "refused")
        assert.match(response.command, /^echo y+… \[\d+ more characters not echoed\]$/)
        assert.isBelow(logs.join("\n").length, 64 * 1024)
      }).pipe(
        Effect.provide(layer),
        Effect.provide(Logger.layer([capture])),
        Effect.provideService(References.MinimumLogLevel, "All")
      )
    },
    90_000
  )
})
