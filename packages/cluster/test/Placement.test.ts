// Placement on a runner that has just joined, for real: a throwaway Postgres, a runner that holds every shard, a
// second one started just before a run of four tests (its shards are still moving to it when the coordinator first
// looks), and the run spread over both. It went all to the first runner while the second held no shards yet.
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Redacted, Schedule } from "effect"
import * as Status from "../src/Status.ts"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"
import {
  backgroundScoped,
  placements,
  readEvents,
  runBudget,
  startRunner,
  sleepersExperiment,
  testTimeout
} from "./processes.ts"

/** Four tests of half a second each (`exec sleep 0.5`), four at a time: two runners of two slots take two each. */
const sleepers = sleepersExperiment("testbed-placement-")

/** Waits (up to `runBudget`) until the runner's row shows it holding `count` shards or more. */
const holding = (url: string, name: string, count: number) =>
  Status.runners(Redacted.make(url), Duration.seconds(15)).pipe(
    Effect.flatMap((rows) =>
      (rows.find((row) => row.name === name)?.shards.length ?? 0) >= count ? Effect.void : Effect.fail("not yet")
    ),
    Effect.retry({ schedule: Schedule.spaced("200 millis") }),
    Effect.timeout(runBudget),
    Effect.orDie
  )

/** Waits (up to `runBudget`) until a run under `out` has its directory; the directory. */
const runDirectory = (out: string) =>
  Effect.sync(() => (existsSync(out) ? readdirSync(out).map((name) => join(out, name)) : [])[0]).pipe(
    Effect.flatMap((dir) => (dir === undefined ? Effect.fail("not yet") : Effect.succeed(dir))),
    Effect.retry({ schedule: Schedule.spaced("100 millis") }),
    Effect.timeout(runBudget),
    Effect.orDie
  )

/**
 * The lock expiry of this test's runners and coordinator: longer than the pause of the first runner (while the second
 * starts, up to tens of seconds on a loaded 2-core machine), so that it keeps its shards and stays live meanwhile.
 */
const expiry = "60s"

describe.skipIf(skipWithoutPostgres)("placement", () => {
  layer(Postgres.layer, { timeout: Duration.millis(testTimeout), excludeTestServices: true })((it) => {
    it.effect(
      "a short run started just after a second runner joined lands on both runners",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          const { file, out } = yield* sleepers
          const start = (name: string) =>
            Effect.flatMap(freePort, (port) =>
              startRunner(url, name, port, ["--no-detect", "--slots", "2", "--lock-expiry", expiry])
            )
          const p1 = yield* start("p1")
          // Every shard of the default group on p1, so the second runner's have to move to it.
          yield* holding(url, "p1", 64)
          // p1 paused while p2 joins and the coordinator starts: p1 cannot release p2's shards (and p2 cannot take
          // them) before the coordinator is up, however fast the handoff or slow the coordinator's start (each takes
          // a few seconds, so without the pause the run was placed on a settled directory as often as not). Its
          // locks and its row last a lock expiry from its last refresh (`expiry`): it is paused for less.
          yield* Effect.acquireRelease(
            Effect.sync(() => p1.child.kill("SIGSTOP")),
            () => Effect.sync(() => p1.child.kill("SIGCONT"))
          )
          yield* start("p2")
          const coordinator = yield* backgroundScoped([
            "run",
            file,
            "--cluster",
            url,
            "--plain",
            "--output-dir",
            out,
            "--lock-expiry",
            expiry
          ])
          const runDir = yield* runDirectory(out)
          p1.child.kill("SIGCONT")
          const code = yield* Effect.promise(coordinator.exited).pipe(Effect.timeout(runBudget), Effect.orDie)
          assert.strictEqual(code, 0, coordinator.output())
          const runners = placements(readEvents(runDir)).map((placement) => placement.runner)
          assert.deepStrictEqual(
            ["p1", "p2"].map((runner) => runners.filter((name) => name === runner).length),
            [2, 2],
            runners.join(", ")
          )
        }),
      testTimeout
    )
  })
})
