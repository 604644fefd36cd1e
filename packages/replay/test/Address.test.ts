import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Address from "../src/Address.ts"

describe("Address", () => {
  it.effect("reads HOST:PORT, :PORT, PORT and [IPv6]:PORT", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* Address.parse("example.org:31200"), { host: "example.org", port: 31200 })
      assert.deepStrictEqual(yield* Address.parse(":8088"), { host: "127.0.0.1", port: 8088 })
      assert.deepStrictEqual(yield* Address.parse("0"), { host: "127.0.0.1", port: 0 })
      assert.deepStrictEqual(yield* Address.parse("[::1]:9"), { host: "::1", port: 9 })
      assert.deepStrictEqual(yield* Address.parse("7", "0.0.0.0"), { host: "0.0.0.0", port: 7 })
    })
  )

  it.effect("refuses what is not an address, naming it", () =>
    Effect.gen(function* () {
      for (const text of ["", "host", "host:", "a:b:1", "host:65536", "host:-1", "[::1]", "host:80x"]) {
        const error = yield* Effect.flip(Address.parse(text))
        assert.strictEqual(error._tag, "AddressInvalid")
        assert.include(error.message, `"${text}"`)
      }
    })
  )
})
