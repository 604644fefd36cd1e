import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Joining from "../src/internal/joining.ts"
import * as Labels from "../src/Labels.ts"
import * as Placement from "../src/internal/placement.ts"
import type { RunnerRow } from "../src/RunnerDirectory.ts"

const row = (name: string, slots: number, shards: ReadonlyArray<string> = []): RunnerRow => ({
  name,
  host: "h",
  address: "127.0.0.1:1",
  labels: [],
  group: "default",
  slots,
  busy: 0,
  running: [],
  shards,
  age: 0
})

describe("Labels", () => {
  it.effect("a missing label that is the experiment's own plugin says how a runner comes to offer it", () =>
    Effect.sync(() => {
      const own = [
        { name: "busybox-http", programs: ["busybox"] },
        { name: "busybox-http", programs: ["busybox"] }
      ]
      assert.strictEqual(
        Labels.ownPluginHint(["busybox-http", "docker"], own),
        " (busybox-http: the experiment's own plugin; a runner offers one when started with --plugins DIR holding it, or --labels busybox-http, on a host with busybox)"
      )
      // Only missing ones: a built-in plugin's label or one a runner has needs no hint.
      assert.strictEqual(Labels.ownPluginHint(["openssl"], own), "")
      assert.strictEqual(Labels.ownPluginHint([], own), "")
    })
  )

  it.effect("a label set's group is sorted and fits a shard id; every runner serves default", () =>
    Effect.sync(() => {
      assert.strictEqual(Labels.groupOf([]), "default")
      assert.strictEqual(Labels.groupOf(["openssl", "docker", "docker"]), "docker+openssl")
      const long = Labels.groupOf(Array.from({ length: 8 }, (_, i) => `label-number-${i}`))
      assert.match(long, /^p-[0-9a-f]{16}$/)
      assert.deepStrictEqual(Labels.groupsOf(["docker"]), ["default", "docker"])
      assert.deepStrictEqual(Labels.groupsOf([]), ["default"])
    })
  )

  it.effect("missing names the labels no runner has, or all of them when no single runner has them all", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(Labels.missing(["docker", "quic"], [["docker"], []]), ["quic"])
      assert.deepStrictEqual(Labels.missing(["docker", "quic"], [["docker"], ["quic"]]), ["docker", "quic"])
      assert.isTrue(Labels.satisfies(["docker", "openssl"], ["docker"]))
      assert.isFalse(Labels.satisfies(["openssl"], ["docker"]))
    })
  )
})

describe("placement", () => {
  it.effect("the runner with the most free slots, counting what this coordinator sent it", () =>
    Effect.sync(() => {
      const runners = [row("r1", 4), row("r2", 4), row("r3", 2)]
      assert.strictEqual(Placement.choose(runners, new Map())?.name, "r1")
      assert.strictEqual(Placement.choose(runners, new Map([["r1", 1]]))?.name, "r2")
      assert.strictEqual(
        Placement.choose(
          runners,
          new Map([
            ["r1", 3],
            ["r2", 3]
          ])
        )?.name,
        "r3"
      )
      assert.isUndefined(Placement.choose([], new Map()))
    })
  )

  it.effect("a runner that holds no shard of the group yet (it has just joined) comes after one that does", () =>
    Effect.sync(() => {
      const busy = row("r1", 4, ["default:1", "docker:1"])
      const joined = row("r2", 4)
      assert.strictEqual(Placement.choose([busy, joined], new Map([["r1", 3]]))?.name, "r1")
      assert.strictEqual(
        Placement.choose([busy, { ...joined, shards: ["default:2"] }], new Map([["r1", 3]]))?.name,
        "r2"
      )
      // The group it would run the attempt in: label-less tests go to "default" on every runner.
      const docker = { ...row("r3", 4, ["default:3"]), group: "docker" }
      assert.strictEqual(Placement.choose([busy, docker], new Map([["r1", 3]]), () => "default")?.name, "r3")
      assert.strictEqual(Placement.choose([busy, docker], new Map([["r1", 3]]))?.name, "r1")
    })
  )

  it.effect("a dispatch waits, at most `within` per runner, for a runner that has just joined to hold shards", () =>
    Effect.gen(function* () {
      const p1 = row("p1", 2, ["default:1", "docker:1"])
      const state = { runners: [p1, row("p2", 2)], looks: 0 }
      const since = new Map<string, number>()
      const settled = Joining.settled({
        look: Effect.sync(() => {
          state.looks++
          return state.runners
        }),
        eligible: (runners) => runners,
        groupOf: () => "default",
        since,
        within: "10 seconds",
        interval: "500 millis"
      })
      const waiting = yield* Effect.forkChild(settled, { startImmediately: true })
      yield* TestClock.adjust("1 second")
      assert.isUndefined(waiting.pollUnsafe(), "p2 holds no shards yet: no look to place on")
      state.runners = [p1, row("p2", 2, ["default:2"])]
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(
        (yield* Fiber.join(waiting)).map((runner) => runner.shards.length),
        [2, 1]
      )
      assert.strictEqual(state.looks, 4)
      assert.strictEqual(since.size, 0)
      // A runner that never gets shards holds dispatches up for `within` from when it was first seen, then no more.
      state.runners = [p1, row("p3", 2)]
      const stuck = yield* Effect.forkChild(settled, { startImmediately: true })
      yield* TestClock.adjust("9500 millis")
      assert.isUndefined(stuck.pollUnsafe())
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(
        (yield* Fiber.join(stuck)).map((runner) => runner.name),
        ["p1", "p3"]
      )
      const looks = state.looks
      assert.deepStrictEqual(
        (yield* settled).map((runner) => runner.name),
        ["p1", "p3"]
      )
      assert.strictEqual(state.looks, looks + 1)
      // Placed on after the wait, it comes after the runners that hold shards.
      assert.strictEqual(Placement.choose(state.runners, new Map([["p1", 2]]), () => "default")?.name, "p1")
    })
  )

  it.effect("the salted id lands on one of the chosen runner's shards", () =>
    Effect.sync(() => {
      const shardOf = (id: string) => `default:${createHash("sha256").update(id).digest().readUInt32BE(0) % 64}`
      const id = Placement.salted("default/run/test/1/0", ["default:5", "default:9"], shardOf)
      assert.include(["default:5", "default:9"], shardOf(id))
      assert.match(Placement.testKey("a".repeat(100), "name"), /^a{64}-[0-9a-f]{8}$/)
    })
  )
})
