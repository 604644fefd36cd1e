import { assert, describe, it } from "@effect/vitest"
import { emptyState, frame, paint } from "../src/internal/liveView.ts"
import { colorWanted } from "../src/Progress.ts"

/** 40 tests: 10 finished (3 failed), 12 running, the rest waiting. */
const state = () => {
  const s = emptyState()
  s.header = "▶ forty → outputs/forty"
  for (let i = 0; i < 40; i++) {
    const name = `test number ${i} ${"with a long name ".repeat(i === 5 ? 20 : 0)}`.trim()
    const finished = i < 10
    const failed = i === 2 || i === 5 || i === 9
    s.rows.set(name, {
      state: finished ? "done" : i < 22 ? "RUNNING_STEPS" : "registered",
      status: finished ? (failed ? "failed" : "passed") : undefined,
      attempt: 1,
      detail: failed ? "exit code 1" : undefined,
      startedAt: i < 22 ? 1_000 : undefined
    })
    if (failed) s.failures.push(name)
  }
  return s
}

describe("the live view's frame", () => {
  it("never taller than the terminal nor wider than a line, whatever the number of tests", () => {
    for (const size of [
      { rows: 20, columns: 100 },
      { rows: 8, columns: 40 },
      { rows: 3, columns: 20 }
    ]) {
      const lines = frame(state(), 13_300, size, paint(false))
      assert.isAtMost(lines.length, Math.max(3, size.rows - 1))
      for (const line of lines) assert.isAtMost(Array.from(line).length, Math.max(10, size.columns - 1), line)
    }
  })

  it("keeps the failures and the running total, counts what does not fit, shows elapsed time", () => {
    const lines = frame(state(), 13_300, { rows: 20, columns: 100 }, paint(false))
    assert.strictEqual(lines[0], "▶ forty → outputs/forty")
    assert.strictEqual(lines[1], "  10/40 done · 7 passed · 3 failed · 12 running · 18 waiting")
    for (const n of [2, 9]) assert.include(lines, `  ✗ failed test number ${n} — exit code 1`)
    // In a small terminal the failures take a third of the room at most, the latest kept.
    const small = frame(state(), 13_300, { rows: 8, columns: 60 }, paint(false))
    assert.deepStrictEqual(small.slice(2, 3), ["  ✗ failed test number 9 — exit code 1"])
    assert.include(lines.join("\n"), "  … test number 10 — running_steps 12.3s")
    assert.strictEqual(lines.length, 2 + 3 + 12)
    assert.match(small.at(-1) ?? "", /^ {2}… and \d+ more running$/)
  })

  it("colours only when asked: NO_COLOR and a dumb terminal turn them off", () => {
    assert.include(frame(state(), 0, { rows: 20, columns: 100 }, paint(true)).join("\n"), "\x1b[31m")
    assert.notInclude(frame(state(), 0, { rows: 20, columns: 100 }, paint(false)).join("\n"), "\x1b[")
    assert.isTrue(colorWanted({}))
    assert.isFalse(colorWanted({ NO_COLOR: "1" }))
    assert.isTrue(colorWanted({ NO_COLOR: "" }))
    assert.isFalse(colorWanted({ TERM: "dumb" }))
  })
})
