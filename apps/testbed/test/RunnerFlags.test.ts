// `testbed runner`'s bundle flags as a user meets them: listed with their defaults, and a value out of range is a
// usage error (exit 2) naming the flag before anything starts. That the values reach the runner (a bundle over
// --bundle-limit refused naming the flag, --bundle-cache evicting) is packages/cluster/test/Bundle.test.ts's.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { testbed } from "./support.ts"

const cluster = ["runner", "--cluster", "postgres://postgres@127.0.0.1:1/none", "--no-detect"]

describe("testbed runner bundle flags", () => {
  it.live("--help lists --bundle-limit and --bundle-cache with their defaults", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* testbed("runner", "--help")
      assert.strictEqual(code, 0)
      assert.match(stdout, /--bundle-limit integer\s+MiB of a stored experiment bundle .*default 256/)
      assert.match(stdout, /--bundle-cache integer\s+MiB of unpacked bundles kept in WORKDIR\/bundles, default 2048/)
    })
  )

  it.live("a bundle limit under 1 MiB or a negative cache bound is a usage error naming the flag", () =>
    Effect.gen(function* () {
      const limit = yield* testbed(...cluster, "--bundle-limit", "0")
      assert.strictEqual(limit.code, 2, limit.stdout + limit.stderr)
      assert.include(limit.stderr, 'Invalid value for flag --bundle-limit: "0". Expected: a limit of at least 1 (MiB)')
      const cache = yield* testbed(...cluster, "--bundle-cache", "-1")
      assert.strictEqual(cache.code, 2, cache.stdout + cache.stderr)
      assert.include(cache.stderr, 'Invalid value for flag --bundle-cache: "-1". Expected: a bound of 0 (MiB) or more')
    })
  )
})
