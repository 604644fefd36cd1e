import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as HostSettings from "../src/HostSettings.ts"

const root = process.getuid?.() === 0

describe("HostSettings", () => {
  // kernel.osrelease is read-only even for root: the write fails whoever runs it.
  it.effect("a setting the kernel refuses names it and its cause; root is not told that it needs root", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(HostSettings.apply({ sysctls: { "kernel.osrelease": "x" } }, (n) => n))
      assert.strictEqual(error._tag, "HostSettingFailed")
      assert.include(error.message, "kernel.osrelease")
      if (root) assert.notInclude(error.message, "needs root")
      else assert.include(error.message, "needs root")
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
