import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema, Stream } from "effect"
import { EventBus } from "../src/EventBus.ts"
import * as Machines from "../src/Machines.ts"
import * as StateMachine from "../src/StateMachine.ts"

const withBus = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, EventBus.layer)

// A random walk is a list of picks; each pick names a target state by index into the machine's states.
const Walk = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 }))).check(
  Schema.isMaxLength(60)
)

describe("StateMachine", () => {
  it.effect("an invalid transition is a typed failure a caller can catch", () =>
    withBus(
      Effect.gen(function* () {
        const machine = yield* StateMachine.make(Machines.Service, "t1/server")
        const error = yield* Effect.flip(machine.transition("RUNNING", "skip ahead"))
        assert.strictEqual(error._tag, "InvalidTransition")
        assert.deepStrictEqual(
          { machine: error.machine, entityId: error.entityId, from: error.from, to: error.to },
          { machine: "service", entityId: "t1/server", from: "CREATED", to: "RUNNING" }
        )
        const recovered = yield* machine
          .transition("RUNNING", "skip ahead")
          .pipe(Effect.catchTag("InvalidTransition", (e) => Effect.succeed(`refused ${e.from}->${e.to}`)))
        assert.strictEqual(recovered, "refused CREATED->RUNNING")
        assert.strictEqual(yield* machine.current, "CREATED")
        assert.deepStrictEqual(yield* machine.history, [])
      })
    )
  )

  it.effect("each move is kept in the history and published as <entity>.state_changed", () =>
    withBus(
      Effect.gen(function* () {
        const bus = yield* EventBus
        const events = yield* bus.subscribe
        const machine = yield* StateMachine.make(Machines.Test, "handshake")
        yield* machine.transition("SETTING_UP", "start", { attempt: 1 })
        yield* machine.transition("FAILED", "crash")
        const published = yield* events.pipe(Stream.take(2), Stream.runCollect)
        assert.deepStrictEqual(
          published.map((e) => [e.type, e.entityId, e.data]),
          [
            [
              "test.state_changed",
              "handshake",
              { machine: "test", from: "CREATED", to: "SETTING_UP", trigger: "start", metadata: { attempt: 1 } }
            ],
            [
              "test.state_changed",
              "handshake",
              { machine: "test", from: "SETTING_UP", to: "FAILED", trigger: "crash", metadata: {} }
            ]
          ]
        )
        const history = yield* machine.history
        assert.deepStrictEqual(
          history.map((h) => [h.from, h.to, h.trigger]),
          [
            ["CREATED", "SETTING_UP", "start"],
            ["SETTING_UP", "FAILED", "crash"]
          ]
        )
        assert.isTrue(yield* machine.isFinal)
        assert.isFalse(yield* machine.canTransition("COMPLETED"))
      })
    )
  )

  it.effect("two fibers racing from the same state: exactly one move wins", () =>
    withBus(
      Effect.gen(function* () {
        const machine = yield* StateMachine.make(Machines.Service, "race")
        const results = yield* Effect.all(
          Array.from({ length: 20 }, () => Effect.exit(machine.transition("PREPARING", "race"))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter(Exit.isSuccess).length, 1)
        assert.strictEqual((yield* machine.history).length, 1)
      })
    )
  )

  for (const definition of Machines.all) {
    describe(`${definition.name} machine`, () => {
      it.effect.prop(
        "random walks: accepted moves are exactly the table's, finals accept nothing, history replays",
        [Walk],
        ([walk]) =>
          withBus(
            Effect.gen(function* () {
              const machine = yield* StateMachine.make(definition, "walk")
              for (const pick of walk) {
                const from = yield* machine.current
                const to = definition.states[pick % definition.states.length]!
                const exit = yield* Effect.exit(machine.transition(to, "walk"))
                const allowed = StateMachine.allows(definition, from, to)
                assert.strictEqual(Exit.isSuccess(exit), allowed, `${from} -> ${to}`)
                if (StateMachine.isFinalState(definition, from)) assert.isFalse(Exit.isSuccess(exit))
                assert.strictEqual(yield* machine.current, allowed ? to : from)
              }
              const history = yield* machine.history
              const replayed = StateMachine.replay(definition, history)
              assert.deepStrictEqual(replayed, { _tag: "Valid", state: yield* machine.current })
            })
          )
      )

      it.effect.prop(
        "model-based: a real machine and a pure model agree on every random command",
        [
          Schema.Array(
            Schema.Struct({
              kind: Schema.Literals(["move", "can", "final", "reach"]),
              pick: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 }))
            })
          ).check(Schema.isMaxLength(50))
        ],
        ([commands]) =>
          withBus(
            Effect.gen(function* () {
              const machine = yield* StateMachine.make(definition, "model")
              // The model: a current state and the raw table, with no code shared with the machine.
              let model: string = definition.initial
              const table = definition.transitions as Record<string, ReadonlyArray<string> | undefined>
              for (const command of commands) {
                const target = definition.states[command.pick % definition.states.length]!
                switch (command.kind) {
                  case "move": {
                    const ok = Exit.isSuccess(yield* Effect.exit(machine.transition(target, "model")))
                    const modelOk = (table[model] ?? []).includes(target)
                    assert.strictEqual(ok, modelOk)
                    if (modelOk) model = target
                    break
                  }
                  case "can":
                    assert.strictEqual(yield* machine.canTransition(target), (table[model] ?? []).includes(target))
                    break
                  case "final":
                    assert.strictEqual(yield* machine.isFinal, definition.final.includes(model as never))
                    break
                  case "reach": {
                    const reach = yield* machine.reachable
                    // Breadth-first over the raw table.
                    const seen = new Set<string>()
                    const queue = [...(table[model] ?? [])]
                    while (queue.length > 0) {
                      const s = queue.shift()!
                      if (!seen.has(s)) {
                        seen.add(s)
                        queue.push(...(table[s] ?? []))
                      }
                    }
                    assert.deepStrictEqual([...reach].sort(), [...seen].sort())
                    break
                  }
                }
                assert.strictEqual(yield* machine.current, model)
              }
            })
          )
      )

      it("every final state has no moves and every state can be named", () => {
        const table = definition.transitions as Record<string, ReadonlyArray<string> | undefined>
        for (const state of definition.final) assert.deepStrictEqual(table[state] ?? [], [])
        for (const [from, tos] of Object.entries(definition.transitions) as Array<[string, ReadonlyArray<string>]>) {
          assert.include(definition.states, from)
          for (const to of tos) assert.include(definition.states, to)
        }
      })

      it("every non-final state can reach a final state", () => {
        for (const state of definition.states) {
          if (StateMachine.isFinalState(definition, state)) continue
          const reach = StateMachine.reachable(definition, state)
          assert.isTrue(
            definition.final.some((f) => reach.has(f)),
            `${state} cannot finish`
          )
        }
      })
    })
  }
})
