import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { testbed } from "./support.ts"

const committed = (kind: string) =>
  readFileSync(new URL(`../../../packages/experiments/schemas/${kind}.schema.json`, import.meta.url), "utf8")

describe("testbed schema", () => {
  it.live("prints the JSON Schema of each kind of file, the one the fixtures' modelines name", () =>
    Effect.gen(function* () {
      for (const kind of ["experiment", "stage", "plugin"]) {
        const { code, stdout } = yield* testbed("schema", kind)
        assert.strictEqual(code, 0)
        assert.deepStrictEqual(JSON.parse(stdout), JSON.parse(committed(kind)))
        assert.strictEqual(JSON.parse(stdout).$schema, "http://json-schema.org/draft-07/schema#")
      }
    })
  )

  it.live("an unknown kind is a usage error: exit code 2", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* testbed("schema", "experiments")
      assert.strictEqual(code, 2)
      assert.include(stderr, "experiment")
    })
  )
})
