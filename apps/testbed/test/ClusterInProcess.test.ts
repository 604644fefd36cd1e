// `testbed cluster status` in this process, on the cluster's given-rows directory (`Status.layerTest`): the flags
// reach the library, a runner heard from within `--lock-expiry` is live and one older is gone, free slots and running
// tests are shown — no Postgres. The real runner table is read in packages/cluster/test/Cluster.test.ts.
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Status } from "@testbed/cluster"
import { Effect, Exit } from "effect"
import { TestConsole } from "effect/testing"
import { run } from "../src/Cli.ts"

const row = (name: string, age: number, busy: number, running: ReadonlyArray<string>) => ({
  name,
  host: `${name}.lab`,
  address: `10.0.0.${name.length}:34431`,
  labels: name === "runner-a" ? ["docker", "openssl"] : [],
  group: "default",
  slots: 4,
  busy,
  running,
  shards: [],
  age
})

const status = (...flags: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    // Port 1 on loopback: nothing listens there, so only the given rows can answer.
    const exit = yield* Effect.exit(run(["cluster", "status", "--cluster", "postgres://127.0.0.1:1/none", ...flags]))
    return { exit, out: (yield* TestConsole.logLines).map(String).join("\n") }
  }).pipe(
    Effect.provide([
      Status.layerTest([row("runner-a", 0.4, 3, ["echo round trip"]), row("runner-b", 12, 0, [])]),
      TestConsole.layer,
      NodeServices.layer
    ])
  )

describe("testbed cluster status in process", () => {
  it.effect("lists each runner with its state, host, labels, free slots and running tests", () =>
    Effect.gen(function* () {
      const { exit, out } = yield* status()
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      const lines = out.split("\n")
      assert.match(lines[0]!, /^RUNNER\s+STATE\s+HOST\s+ADDRESS\s+LABELS\s+FREE\s+RUNNING\s+LAST SEEN$/)
      assert.match(
        lines[1]!,
        /^runner-a\s+live\s+runner-a\.lab\s+\S+\s+docker,openssl\s+1\/4\s+echo round trip\s+0\.4s ago$/
      )
      // The default lock expiry is 15 s: 12 s since its heartbeat is still live.
      assert.match(lines[2]!, /^runner-b\s+live\s+runner-b\.lab\s+\S+\s+-\s+4\/4\s+-\s+12\.0s ago$/)
    })
  )

  it.effect("--lock-expiry decides when a runner counts as gone", () =>
    Effect.gen(function* () {
      const { out } = yield* status("--lock-expiry", "5s")
      assert.match(out.split("\n")[2]!, /^runner-b\s+gone\s/)
    })
  )
})
