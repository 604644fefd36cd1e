// Every id of a run comes from @testbed/events' `Ids` in context: with `Ids.layerTest(seed)` each event of a run on
// the fake environment carries the seeded generator's tag, so no producer draws ids from a generator of its own.
import { assert, describe, it } from "@effect/vitest"
import { Ids } from "@testbed/events"
import { Effect } from "effect"
import { runOnFake } from "./fake.ts"

/** The tag (second field of `<prefix>-<tag>-<n>`) of the generator a seed makes. */
const tagOf = (seed: number) => Ids.makeSeeded(seed).unique("x").split("-")[1]!
const tagsOf = (ids: ReadonlyArray<string>) => new Set(ids.map((id) => id.split("-")[1]))

const crash = {
  "crashing server/server": { exitAfter: "1 second", exitCode: 3, stderr: "boom\n" },
  "healthy pair/server": { stdout: "echo server listening on 127.0.0.1\n" },
  "healthy pair/client": { exitAfter: "200 millis", stdout: "echo ok: 3 messages\n" }
} as const

describe("the run's ids (Ids.layerTest)", () => {
  it.effect("a seeded generator stamps every event of the run; another seed another tag", () =>
    Effect.gen(function* () {
      const script = (launch: { readonly id: string }) => crash[launch.id as keyof typeof crash] ?? {}
      const seven = yield* runOnFake("cases/crash.yaml", script, { layer: Ids.layerTest(7) })
      const eight = yield* runOnFake("cases/crash.yaml", script, { layer: Ids.layerTest(8) })
      const live = yield* runOnFake("cases/crash.yaml", script)
      assert.isAbove(seven.events.length, 20)
      assert.deepStrictEqual([...tagsOf(seven.events.map((event) => event.id))], [tagOf(7)])
      assert.deepStrictEqual([...tagsOf(eight.events.map((event) => event.id))], [tagOf(8)])
      assert.notInclude([...tagsOf(live.events.map((event) => event.id))], tagOf(7))
      // Ids are unique within the run.
      assert.strictEqual(new Set(seven.events.map((event) => event.id)).size, seven.events.length)
    })
  )
})
