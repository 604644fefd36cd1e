// The lease rule of lock refreshes while Postgres is away, on Effect's clock: a refresh that fails is answered
// "still held" only while the last refresh that reached Postgres holds, less one refresh interval; past that the
// failure reaches the engine (which then interrupts, and the attempts run elsewhere).
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber } from "effect"
import { ClusterError, RunnerAddress, type RunnerStorage, ShardId } from "effect/cluster"
import { TestClock } from "effect/testing"
import * as OutageTolerant from "../src/internal/outageTolerant.ts"

const address = RunnerAddress.make("127.0.0.1", 34431)
const shards = [ShardId.make("default", 1), ShardId.make("default", 2)]

const unused = () => Effect.die("not used by this test")

/** A runner storage whose refresh reaches Postgres only while `up.value` is true. */
const storage = (up: { value: boolean }): RunnerStorage.RunnerStorage["Service"] => ({
  register: unused,
  unregister: unused,
  getRunners: unused(),
  setRunnerHealth: unused,
  acquire: unused,
  release: unused,
  releaseAll: unused,
  refresh: (_address, ids) =>
    up.value
      ? Effect.succeed([...ids])
      : Effect.fail(new ClusterError.PersistenceError({ cause: new Error("connection refused") }))
})

describe("OutageTolerant.runnerStorage", () => {
  it.effect("answers from the lease while Postgres is away, and fails once the lease (less one interval) ran out", () =>
    Effect.gen(function* () {
      const up = { value: true }
      const tolerant = OutageTolerant.runnerStorage(
        storage(up),
        { lockExpiry: Duration.seconds(6), refreshInterval: Duration.seconds(2) },
        yield* Effect.scope
      )
      assert.deepStrictEqual(yield* tolerant.refresh(address, shards), shards)
      up.value = false
      yield* TestClock.adjust("3999 millis")
      assert.deepStrictEqual(yield* tolerant.refresh(address, shards), shards)
      yield* TestClock.adjust("1 millis")
      const past = yield* Effect.exit(tolerant.refresh(address, shards))
      assert.isTrue(Exit.isFailure(past))
      // Back: a refresh reaches it and starts a new lease.
      up.value = true
      assert.deepStrictEqual(yield* tolerant.refresh(address, shards), shards)
      up.value = false
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* tolerant.refresh(address, shards), shards)
    })
  )

  it.effect("a runner that never reached Postgres has no lease: the failure goes through", () =>
    Effect.gen(function* () {
      const tolerant = OutageTolerant.runnerStorage(
        storage({ value: false }),
        { lockExpiry: Duration.seconds(6), refreshInterval: Duration.seconds(2) },
        yield* Effect.scope
      )
      assert.isTrue(Exit.isFailure(yield* Effect.exit(tolerant.refresh(address, shards))))
    })
  )

  // Under load a refresh can take longer than the patience. Interrupting it made the SQL storage replace its lock
  // connection (a new Postgres session), and the next refresh, waiting for that, was slower still.
  it.effect("a slow refresh is answered from the lease but not interrupted, and renews the lease when it lands", () =>
    Effect.gen(function* () {
      const finished: Array<number> = []
      const interrupted: Array<number> = []
      let calls = 0
      const slow: RunnerStorage.RunnerStorage["Service"] = {
        ...storage({ value: true }),
        refresh: (_address, ids) => {
          const call = ++calls
          // The first refresh is prompt (it starts the lease); the others take 1.5 s (patience: 1 s).
          return call === 1
            ? Effect.succeed([...ids])
            : Effect.sleep("1500 millis").pipe(
                Effect.as([...ids]),
                Effect.tap(() => Effect.sync(() => finished.push(call))),
                Effect.onInterrupt(() => Effect.sync(() => interrupted.push(call)))
              )
        }
      }
      const tolerant = OutageTolerant.runnerStorage(
        slow,
        { lockExpiry: Duration.seconds(6), refreshInterval: Duration.seconds(2) },
        yield* Effect.scope
      )
      assert.deepStrictEqual(yield* tolerant.refresh(address, shards), shards)
      // Each refresh answers from the lease after 1 s; its query lands 0.5 s later and renews the lease. Without
      // that (an interrupted query renews nothing), the lease of the first refresh runs out at 4 s.
      for (let i = 0; i < 4; i++) {
        const answer = yield* Effect.forkChild(tolerant.refresh(address, shards))
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* Fiber.join(answer), shards)
        yield* TestClock.adjust("1 second")
      }
      assert.deepStrictEqual(interrupted, [])
      assert.deepStrictEqual(finished, [2, 3, 4, 5])
    })
  )
})
