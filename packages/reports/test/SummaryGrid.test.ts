// The interop runner's overview: several per-case grids over the same servers and clients get a summary grid.
import { assert, describe, it } from "@effect/vitest"
import type { Event } from "@testbed/events"
import { Effect, Stream } from "effect"
import * as Collector from "../src/Collector.ts"
import * as MarkdownReport from "../src/MarkdownReport.ts"

const t0 = Date.parse("2026-01-01T00:00:00.000Z")

const run = (cells: ReadonlyArray<readonly [string, string, string, string]>) => {
  let n = 0
  const e = (type: string, entityId: string, data: unknown): Event.Event => ({
    id: `e${n}`,
    type,
    entityType: type.slice(0, type.indexOf(".")),
    entityId,
    timestamp: new Date(t0 + n++ * 100).toISOString(),
    data
  })
  const events = [e("experiment.started", "run", { name: "tls" })]
  for (const [testCase, server, client, status] of cells) {
    const name = `${testCase} [${server} server, ${client} client]`
    const participants = [
      { service: "server", implementation: server, type: "iut", role: "server" },
      { service: "client", implementation: client, type: "iut", role: "client" }
    ]
    events.push(
      e("test.registered", name, { name, participants, matrix: { row: server, column: client, name: testCase } })
    )
    events.push(e("test.started", name, { name, attempt: 1 }))
    events.push(e("test.finished", name, { name, attempt: 1, status, durationMs: 100 }))
  }
  events.push(e("experiment.finished", "run", { status: "completed" }))
  return Collector.fold(Stream.fromIterable(events), { generatedAt: "2026-01-02T00:00:00.000Z" })
}

describe("summary grid", () => {
  it.effect(
    "per-case grids over the same pairs get a summary: failed wins, unsupported is not held against a pair",
    () =>
      Effect.gen(function* () {
        const s = yield* run([
          ["tls13", "a", "a", "passed"],
          ["tls13", "a", "b", "unsupported"],
          ["alpn", "a", "a", "failed"],
          ["alpn", "a", "b", "passed"]
        ])
        assert.deepStrictEqual(
          s.matrices.map((m) => m.name),
          ["tls13", "alpn", "summary: all cases"]
        )
        const summary = s.matrices[2]!
        assert.deepStrictEqual(
          summary.cells.map((c) => [c.row, c.column, c.status, c.tests.length]),
          [
            ["a", "a", "failed", 2],
            ["a", "b", "passed", 2]
          ]
        )
        assert.include(MarkdownReport.render(s), "summary: all cases")
      })
  )

  it.effect("grids over different pairs get no summary", () =>
    Effect.gen(function* () {
      const s = yield* run([
        ["tls13", "a", "a", "passed"],
        ["alpn", "a", "b", "passed"]
      ])
      assert.deepStrictEqual(
        s.matrices.map((m) => m.name),
        ["tls13", "alpn"]
      )
    })
  )
})
