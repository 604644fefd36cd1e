import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as TestbedEvent from "../src/TestbedEvent.ts"

describe("TestbedEvent", () => {
  it("every family's type starts with its entity type, and entityTypeOf reads it off the family", () => {
    for (const member of TestbedEvent.TestbedEvent.members) {
      const type = member.fields.type.literal
      const entityType = member.fields.entityType.literal
      assert.isTrue(type.startsWith(`${entityType}.`), type)
      assert.strictEqual(TestbedEvent.entityTypeOf(type), entityType)
    }
  })

  it.effect("make stamps a payload into an event the union decodes", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 0, 2, 3, 4, 5))
      const event = yield* TestbedEvent.make({
        type: "step.state_changed",
        entityId: "p/a/0",
        data: { machine: "fleet_step", from: "pending", to: "sent", trigger: "published", metadata: {} }
      })
      assert.strictEqual(event.entityType, "step")
      assert.strictEqual(event.timestamp, "2026-01-02T03:04:05.000Z")
      assert.deepStrictEqual(Schema.decodeUnknownSync(TestbedEvent.TestbedEvent)(event), event)
    })
  )
})
