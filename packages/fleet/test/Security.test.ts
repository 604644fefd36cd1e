import { assert, describe, it } from "@effect/vitest"
import { Option, Redacted, Result } from "effect"
import { Protocol, Security } from "../src/index.ts"

const signing = Security.signed(Redacted.make("s3cret"), "30 seconds")

describe("Security", () => {
  it("accepts a signed command and refuses unsigned, forged and stale ones", () => {
    const now = 1_700_000_000_000
    const message = Security.sign(signing, { client_id: "a1", command: "uptime" }, "id-1", now)
    assert.isTrue(Result.isSuccess(Security.verify(signing, message, now + 1000)))
    assert.deepStrictEqual(
      Security.verify(signing, { client_id: "a1", command: "uptime" }, now),
      Result.fail("unsigned")
    )
    assert.deepStrictEqual(Security.verify(signing, { ...message, command: "rm -rf ~" }, now), Result.fail("forged"))
    assert.deepStrictEqual(Security.verify(signing, { ...message, client_id: "a2" }, now), Result.fail("forged"))
    const other = Security.signed(Redacted.make("guess"))
    assert.deepStrictEqual(
      Security.verify(signing, Security.sign(other, { client_id: "a1", command: "uptime" }, "id-2", now), now),
      Result.fail("forged")
    )
    assert.deepStrictEqual(Security.verify(signing, message, now + 31_000), Result.fail("stale"))
    assert.isTrue(Result.isSuccess(Security.verify(Security.compat, { client_id: "a1", command: "x" }, now)))
  })

  it("matches exact commands, shell-safe globs and whole-command regexes", () => {
    const allow = Security.allowlist(["uptime", "stress-ng --cpu *", "/sleep [0-9]+/"])
    assert.isTrue(allow.allows("uptime"))
    assert.isFalse(allow.allows("uptime; id"))
    assert.isTrue(allow.allows("stress-ng --cpu 4 --timeout 60s"))
    assert.isFalse(allow.allows("stress-ng --cpu 4; rm -rf ~"))
    assert.isFalse(allow.allows("stress-ng --cpu $(id)"))
    assert.isTrue(allow.allows("sleep 5"))
    assert.isFalse(allow.allows("sleep 5 && id"))
    assert.isTrue(Security.allowlist(undefined).allows("anything"))
  })

  it("never shows the secret", () => {
    assert.notInclude(String(Redacted.make("s3cret")), "s3cret")
    assert.notInclude(JSON.stringify(signing), "s3cret")
  })

  it("signs registrations over id and time; compat sends the raw id", () => {
    const now = 1_700_000_000_000
    assert.strictEqual(Security.registrationPayload(Security.compat, "sut-1", "s1", now), "sut-1")
    const decode = (payload: string) => Option.getOrThrow(Protocol.decodeRegistration(payload))
    const message = decode(Security.registrationPayload(signing, "sut-1", "s1", now))
    assert.strictEqual(message.client_id, "sut-1")
    assert.isTrue(Result.isSuccess(Security.verifyRegistration(signing, message, now + 1000)))
    assert.deepStrictEqual(
      Security.verifyRegistration(signing, { ...message, client_id: "sut-2" }, now),
      Result.fail("forged")
    )
    assert.deepStrictEqual(
      Security.verifyRegistration(signing, { ...message, timestamp: now + 1 }, now),
      Result.fail("forged")
    )
    assert.deepStrictEqual(
      Security.verifyRegistration(signing, { ...message, session: "s2" }, now),
      Result.fail("forged")
    )
    assert.deepStrictEqual(Security.verifyRegistration(signing, message, now + 31_000), Result.fail("stale"))
    assert.isTrue(Option.isNone(Protocol.decodeRegistration("sut-1")))
  })
})
