// What `Stages` decides — one set of containers per up, down before another up, cleanup after a failure or an
// interrupt, readiness deadlines — on the in-memory engine (`Docker.layerMemory`) and TestClock: no container, no
// network, no real waiting. Stages.test.ts runs the same kind of stage on the real engine.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Effect, Exit, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { Docker } from "../src/Docker.ts"
import type { MemoryOptions } from "../src/internal/memoryEngine.ts"
import { Stages } from "../src/Stages.ts"
import { type Sandbox, sandbox } from "./support.ts"

const image = "testbed/busybox:fixture"

/** Stages over a private catalog on an engine in memory; the sandbox is removed afterwards. */
const withMemoryStages = <A, E>(
  names: ReadonlyArray<string>,
  body: (stages: Stages["Service"], box: Sandbox) => Effect.Effect<A, E, Docker | Stages>,
  options: {
    readonly exec?: MemoryOptions["exec"]
    readonly edit?: (text: string, name: string) => string
  } = {}
) => {
  const box = sandbox(names, options.edit)
  const layer = Stages.layer({ catalog: box.catalog, stateDir: box.stateDir }).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        Docker.layerMemory({ images: [image], ...(options.exec ? { exec: options.exec } : {}) }),
        EventBus.EventBus.layer,
        NodeServices.layer
      )
    )
  )
  return Effect.flatMap(Stages, (stages) => body(stages, box)).pipe(
    Effect.provide(layer),
    Effect.ensuring(Effect.sync(() => box.cleanup()))
  )
}

/** Moves TestClock on in small steps (at most 20 ms per real millisecond), letting real file I/O (the lock, the record) finish. */
const drive = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function* () {
    while (fiber.pollUnsafe() === undefined) {
      yield* TestClock.adjust("20 millis")
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    }
    return yield* Fiber.await(fiber)
  })

const engineHolds = (stages: Stages["Service"]) =>
  Effect.gen(function* () {
    const docker = yield* Docker
    const containers = yield* docker.listContainers({ "testbed.namespace": stages.namespace })
    const networks = yield* docker.listNetworks({ "testbed.namespace": stages.namespace })
    return { containers, networks }
  })

describe("Stages on the in-memory engine (TestClock)", () => {
  it.effect("up twice leaves one set of containers, from the second run; down leaves nothing", () =>
    withMemoryStages(["routing-lab"], (stages, box) =>
      Effect.gen(function* () {
        const loaded = yield* stages.load("routing-lab")
        const first = yield* drive(yield* Effect.forkChild(stages.up(loaded)))
        const second = yield* drive(yield* Effect.forkChild(stages.up(loaded)))
        assert.isTrue(Exit.isSuccess(first) && Exit.isSuccess(second))
        const runId = Exit.isSuccess(second) ? second.value.runId : ""
        assert.notStrictEqual(Exit.isSuccess(first) ? first.value.runId : "", runId)
        const held = yield* engineHolds(stages)
        assert.strictEqual(held.containers.length, 2)
        assert.isTrue(held.containers.every((c) => c.Labels["testbed.run"] === runId && c.State === "running"))
        assert.strictEqual(held.networks.length, 2)
        const status = yield* stages.status()
        assert.deepStrictEqual(
          status.nodes.map((n) => [n.node, n.addresses]),
          [
            ["client1", { net1: `${box.prefixes[0]}.10` }],
            ["client2", { net2: `${box.prefixes[1]}.10` }]
          ]
        )
        yield* drive(yield* Effect.forkChild(stages.down()))
        const after = yield* engineHolds(stages)
        assert.deepStrictEqual([after.containers.length, after.networks.length], [0, 0])
        assert.isFalse(existsSync(join(box.stateDir, "stage.json")))
      })
    )
  )

  it.effect("a node that never gets ready fails up with NodeNotReady at its deadline and leaves nothing", () =>
    withMemoryStages(
      ["routing-lab"],
      (stages, box) =>
        Effect.gen(function* () {
          const exit = yield* drive(yield* Effect.forkChild(stages.up(yield* stages.load("routing-lab"))))
          const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
          assert.strictEqual(error?._tag === "Fail" ? error.error._tag : undefined, "NodeNotReady")
          assert.include(error?._tag === "Fail" ? error.error.message : "", "/nonexistent")
          const held = yield* engineHolds(stages)
          assert.deepStrictEqual([held.containers.length, held.networks.length], [0, 0])
          assert.isFalse(existsSync(join(box.stateDir, "stage.json")))
          assert.isNull((yield* stages.status()).current)
        }),
      {
        exec: (_container, cmd) => ({ exitCode: cmd.includes("/nonexistent") ? 1 : 0 }),
        edit: (text) =>
          text.replace("test, -d, /root/src], timeout: 20 seconds", "test, -d, /nonexistent], timeout: 2 seconds")
      }
    )
  )

  it.effect("an interrupt in the middle of up (readiness pending) leaves no container, network or record", () =>
    withMemoryStages(
      ["routing-lab"],
      (stages, box) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(stages.up(yield* stages.load("routing-lab")))
          // Until both containers run and up waits on their readiness.
          let running = false
          for (let i = 0; i < 1000 && !running; i++) {
            const held = yield* engineHolds(stages)
            running = held.containers.length === 2 && held.containers.every((c) => c.State === "running")
            if (running) break
            yield* TestClock.adjust("20 millis")
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
          }
          assert.isTrue(running, "up got as far as running containers")
          assert.isUndefined(fiber.pollUnsafe(), "up still waits on readiness")
          const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
          assert.isTrue(Exit.hasInterrupts(exit))
          const held = yield* engineHolds(stages)
          assert.deepStrictEqual([held.containers.length, held.networks.length], [0, 0])
          assert.isFalse(existsSync(join(box.stateDir, "stage.json")))
        }),
      { exec: () => ({ exitCode: 1 }) }
    )
  )

  it.effect("a failing up hook fails up with HookFailed (its output kept) and leaves nothing", () =>
    withMemoryStages(
      ["routing-lab"],
      (stages) =>
        Effect.gen(function* () {
          const loaded = yield* stages.load("routing-lab")
          const failing = {
            ...loaded,
            stage: { ...loaded.stage, hooks: { up: [{ node: "client1", command: ["setup-routes"] }] } }
          }
          const exit = yield* drive(yield* Effect.forkChild(stages.up(failing)))
          const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
          assert.strictEqual(error?._tag === "Fail" ? error.error._tag : undefined, "HookFailed")
          assert.include(error?._tag === "Fail" ? error.error.message : "", "no route to 10.9.9.9")
          const held = yield* engineHolds(stages)
          assert.deepStrictEqual([held.containers.length, held.networks.length], [0, 0])
        }),
      {
        exec: (_container, cmd) => (cmd[0] === "setup-routes" ? { exitCode: 2, stderr: "no route to 10.9.9.9\n" } : {})
      }
    )
  )

  it.effect("a stage whose subnet another network holds fails with NetworkConflict and leaves nothing of its own", () =>
    withMemoryStages(["routing-lab"], (stages, box) =>
      Effect.gen(function* () {
        const docker = yield* Docker
        yield* docker.createNetwork({ name: "someone-else", subnet: `${box.prefixes[1]}.0/24`, labels: {} })
        const exit = yield* drive(yield* Effect.forkChild(stages.up(yield* stages.load("routing-lab"))))
        const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
        assert.strictEqual(error?._tag === "Fail" ? error.error._tag : undefined, "NetworkConflict")
        const held = yield* engineHolds(stages)
        assert.deepStrictEqual([held.containers.length, held.networks.length], [0, 0])
        assert.strictEqual((yield* docker.listNetworks({})).length, 1)
      })
    )
  )
})
