import { assert, describe, it } from "@effect/vitest"
import { Cause, Exit, Schema } from "effect"
import * as ExitCode from "../src/ExitCode.ts"
import { EventLogLineInvalid } from "../src/EventLog.ts"
import { InvalidTransition } from "../src/StateMachine.ts"
import { WriteFailed } from "../src/WriteFailed.ts"

class Plain extends Schema.TaggedError<Plain>()("Plain", {}) {}

describe("ExitCode", () => {
  it("reads the code an error class carries from any cause", () => {
    const full = new WriteFailed({ path: "/x", code: "ENOSPC", reason: "no space left on device" })
    const bad = new EventLogLineInvalid({ path: "/x", line: 3, reason: "not JSON" })
    assert.strictEqual(ExitCode.fromCause(Cause.fail(full)), ExitCode.infrastructure)
    assert.strictEqual(ExitCode.fromCause(Cause.fail(bad)), ExitCode.usage)
    // The first failure decides, also next to an interruption.
    assert.strictEqual(ExitCode.fromCause(Cause.combine(Cause.interrupt(1), Cause.fail(bad))), ExitCode.usage)
    assert.strictEqual(ExitCode.fromCause(Cause.fail(new Plain())), ExitCode.testFailed)
    assert.strictEqual(
      ExitCode.fromCause(
        Cause.fail(new InvalidTransition({ machine: "m", entityId: "e", from: "A", to: "B", trigger: "t" }))
      ),
      ExitCode.testFailed
    )
    assert.strictEqual(ExitCode.fromCause(Cause.interrupt(1)), ExitCode.interrupted)
    assert.strictEqual(ExitCode.fromCause(Cause.die(new Error("bug"))), ExitCode.testFailed)
    assert.strictEqual(ExitCode.fromExit(Exit.succeed(1)), ExitCode.passed)
    assert.isTrue(ExitCode.isCarrier(full))
    assert.isFalse(ExitCode.isCarrier(new Plain()))
  })
})
