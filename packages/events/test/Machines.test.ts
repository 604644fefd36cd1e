import { assert, describe, it } from "@effect/vitest"
import * as Machines from "../src/Machines.ts"
import { allows } from "../src/StateMachine.ts"

describe("Machines (COMPAT.md §3)", () => {
  it("service: the 13 PANTHER states, RUNNING ⇄ READY, restart from STOPPED, DESTROYED final", () => {
    assert.strictEqual(Machines.Service.states.length, 13)
    const m = Machines.Service
    const path = ["CREATED", "PREPARING", "PREPARED", "DEPLOYING", "DEPLOYED", "STARTING", "RUNNING", "READY"] as const
    for (let i = 0; i + 1 < path.length; i++) assert.isTrue(allows(m, path[i]!, path[i + 1]!))
    assert.isTrue(allows(m, "READY", "RUNNING"))
    for (const s of ["DEPLOYED", "STARTING", "RUNNING", "READY"] as const) assert.isTrue(allows(m, s, "STOPPING"))
    assert.isFalse(allows(m, "PREPARED", "STOPPING"))
    assert.deepStrictEqual([...(m.transitions.STOPPED ?? [])].sort(), ["DESTROYED", "DESTROYING", "STARTING"])
    for (const s of path) {
      assert.isTrue(allows(m, s, "ERROR"))
      assert.isTrue(allows(m, s, "DESTROYED"))
    }
    assert.isTrue(allows(m, "STOPPING", "ERROR"))
    assert.isFalse(allows(m, "STOPPED", "ERROR"))
    assert.deepStrictEqual([...(m.transitions.ERROR ?? [])].sort(), ["DESTROYED", "DESTROYING", "STOPPING"])
    assert.deepStrictEqual(m.transitions.DESTROYING, ["DESTROYED"])
    assert.deepStrictEqual(m.final, ["DESTROYED"])
  })

  it("experiment: FAILED from every non-final state, FINISHED_EARLY only from INITIALIZING…RUNNING", () => {
    const m = Machines.Experiment
    for (const s of m.states) {
      if (m.final.includes(s)) continue
      assert.isTrue(allows(m, s, "FAILED"), s)
    }
    assert.isFalse(allows(m, "CREATED", "FINISHED_EARLY"))
    assert.isTrue(allows(m, "INITIALIZING", "FINISHED_EARLY"))
    assert.isTrue(allows(m, "RUNNING", "FINISHED_EARLY"))
    assert.isFalse(allows(m, "COLLECTING_RESULTS", "FINISHED_EARLY"))
    assert.isTrue(allows(m, "COLLECTING_RESULTS", "COMPLETED"))
  })

  it("test: a straight line to COMPLETED, FAILED from anywhere not final", () => {
    const m = Machines.Test
    assert.isTrue(allows(m, "VALIDATING_ASSERTIONS", "TEARING_DOWN"))
    assert.isTrue(allows(m, "TEARING_DOWN", "COMPLETED"))
    assert.isFalse(allows(m, "EXECUTING", "COMPLETED"))
    assert.isTrue(allows(m, "CREATED", "FAILED"))
    assert.isFalse(allows(m, "COMPLETED", "FAILED"))
  })

  it("environment: ERROR recovers to TEARING_DOWN, DESTROYING or READY", () => {
    const m = Machines.Environment
    assert.deepStrictEqual([...(m.transitions.ERROR ?? [])].sort(), ["DESTROYING", "READY", "TEARING_DOWN"])
    assert.isTrue(allows(m, "TORN_DOWN", "DESTROYING"))
    assert.deepStrictEqual(m.final, ["DESTROYED"])
  })
})
