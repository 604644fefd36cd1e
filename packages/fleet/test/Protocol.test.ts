import { assert, describe, it } from "@effect/vitest"
import { Option, Schema } from "effect"
import { Protocol } from "../src/index.ts"

const oldJson = {
  client_id: "client1",
  command: "echo hi",
  start_time: "1718000000.123456",
  end_time: "1718000000.234567",
  output: "hi\n",
  error: "None"
}

describe("Protocol", () => {
  it("decodes the original's command payloads in both modes", () => {
    assert.deepStrictEqual(
      Protocol.decodeCommand("json", '{"client_id": "c1", "command": "ls -l"}'),
      Option.some({
        client_id: "c1",
        command: "ls -l"
      })
    )
    assert.deepStrictEqual(
      Protocol.decodeCommand("plain", "c1|echo a|b"),
      Option.some({ client_id: "c1", command: "echo a|b" })
    )
    assert.isTrue(Option.isNone(Protocol.decodeCommand("plain", "no bar")))
    assert.isTrue(Option.isNone(Protocol.decodeCommand("json", '{"client_id": "c1"}')))
    assert.isTrue(Option.isNone(Protocol.decodeCommand("json", "[1,2]")))
  })

  it("reads old agents' answers, JSON and plain, including the failure form without output", () => {
    assert.deepStrictEqual(Option.getOrThrow(Protocol.decodeResponse(JSON.stringify(oldJson))), oldJson)
    const failed = { ...oldJson, error: "Failed to execute command: boom" } as Record<string, string>
    delete failed.output
    assert.isTrue(Option.isSome(Protocol.decodeResponse(JSON.stringify(failed))))
    const plain = "Client: client1\nCommand: echo hi\nStart Time: 1.5\nEnd Time: 2.5\nOutput: hi\nthere\n\nError: None"
    assert.deepStrictEqual(
      Protocol.decodeResponse(plain),
      Option.some({
        client_id: "client1",
        command: "echo hi",
        start_time: "1.5",
        end_time: "2.5",
        output: "hi\nthere\n",
        error: "None"
      })
    )
  })

  it.prop("encodes and decodes our answers in both modes", [Schema.String, Schema.Int], ([text, anyCode]) => {
    // JSON has no negative zero.
    const code = anyCode === 0 ? 0 : anyCode
    const response: Protocol.ResponseMessage = {
      ...oldJson,
      output: `${text}\n`,
      error: "warn",
      exit_code: code,
      command_id: "id-1",
      duration: 0.5,
      timed_out: false,
      status: code === 0 ? "succeeded" : "failed"
    }
    for (const mode of ["json", "plain"] as const) {
      const back = Protocol.decodeResponse(Protocol.encodeResponse(mode, response))
      if (mode === "json") assert.deepStrictEqual(Option.getOrThrow(back), response)
      else if (!text.includes("\nError: "))
        assert.deepStrictEqual(
          Option.map(back, (r) => [r.output, r.exit_code, r.status]),
          Option.some([response.output, code, response.status])
        )
    }
  })

  it("keeps testbed's topics out of the old subscriptions", () => {
    assert.strictEqual(Protocol.runningTopic(Protocol.defaultTopics), "system_performance/responses/running")
    assert.strictEqual(Protocol.lostTopic(Protocol.defaultTopics), "clients/registration/lost")
  })
})
