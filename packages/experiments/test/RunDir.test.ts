import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Experiment } from "../src/index.ts"

describe("Experiment.makeRunDir", () => {
  // The TestClock stands still: every run below starts "in the same second", the case that used to collide.
  it.effect("runs started at the same time get one directory each, suffixed -2, -3, …", () =>
    Effect.gen(function* () {
      const output = mkdtempSync(join(tmpdir(), "testbed-rundir-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(output, { recursive: true, force: true })))
      const dirs = yield* Effect.all(
        Array.from({ length: 8 }, () => Experiment.makeRunDir(join(output, "outputs"), "My Experiment")),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(dirs).size, 8)
      const names = readdirSync(join(output, "outputs")).sort()
      assert.strictEqual(names.length, 8)
      assert.match(names[0] ?? "", /^my-experiment-19700101-000000$/)
      assert.deepStrictEqual(
        names
          .slice(1)
          .map((name) => name.replace(/^my-experiment-19700101-000000/, ""))
          .sort(),
        ["-2", "-3", "-4", "-5", "-6", "-7", "-8"]
      )
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a run directory left by an earlier run is never reused", () =>
    Effect.gen(function* () {
      const output = mkdtempSync(join(tmpdir(), "testbed-rundir-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(output, { recursive: true, force: true })))
      const first = yield* Experiment.makeRunDir(output, "again")
      const second = yield* Experiment.makeRunDir(output, "again")
      assert.notStrictEqual(first, second)
      assert.strictEqual(second, `${first}-2`)
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
