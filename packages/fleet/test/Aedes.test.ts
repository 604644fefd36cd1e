// The whole protocol against the embedded Aedes broker.
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Broker } from "../src/index.ts"
import { layer } from "./helpers.ts"
import { twoPipelinesOnThreeAgents } from "./scenarios.ts"

describe("fleet on the embedded broker", () => {
  it.live("runs two pipelines on three agents (JSON, signed)", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      yield* twoPipelinesOnThreeAgents(broker, "json")
    }).pipe(Effect.provide(layer))
  )
  it.live("runs two pipelines on three agents (plain text, compat)", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.embedded({ port: 0 })
      yield* twoPipelinesOnThreeAgents(broker, "plain")
    }).pipe(Effect.provide(layer))
  )
})
