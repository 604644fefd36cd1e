import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import packageJson from "../package.json" with { type: "json" }
import { testbed } from "./support.ts"

describe("testbed CLI", () => {
  it.live("--version prints the package version", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* testbed("--version")
      assert.strictEqual(code, 0)
      assert.include(stdout, packageJson.version)
    })
  )

  it.live("--help describes the tool and its command groups", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* testbed("--help")
      assert.strictEqual(code, 0)
      assert.include(stdout, "USAGE")
      assert.include(stdout, "testbed")
    })
  )

  it.live("an unknown command is a usage error: exit code 2", () =>
    Effect.gen(function* () {
      const { code, stdout, stderr } = yield* testbed("no-such-command")
      assert.strictEqual(code, 2)
      assert.match(stdout + stderr, /no-such-command/)
    })
  )
})
