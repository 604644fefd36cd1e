// `testbed run`'s cluster flags as a user meets them. Given without --cluster they were ignored and the run went on
// locally: `--resume RUNDIR` without --cluster ran every test again on this machine. Now that is a usage error (exit
// 2) naming them, before anything runs. And `--resume RUNDIR --cluster URL` needs no FILE: the run's own is used
// (packages/cluster/test/Cluster.test.ts resumes that way, for real); a directory that is no cluster run is refused
// before the cluster is reached.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { testbed } from "./support.ts"

const scratch = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "testbed-run-cluster-flags-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** A one-test experiment that would pass if it ran (the assertions below show it never does). */
const experiment = (dir: string) => {
  const file = join(dir, "one.yaml")
  writeFileSync(
    file,
    "name: one\ntests:\n  - name: t\n    services:\n      c: { implementation: exec, role: client, parameters: { program: 'true' } }\n"
  )
  return file
}

describe("testbed run cluster flags", () => {
  it.live("--resume without --cluster is a usage error, and nothing runs", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* scratch
        const ran = yield* testbed("run", experiment(dir), "--resume", dir, "--output-dir", join(dir, "out"))
        assert.strictEqual(ran.code, 2, ran.stdout + ran.stderr)
        assert.include(ran.stderr, "--resume works only with --cluster URL")
        assert.notInclude(ran.stdout, "passed")
      })
    )
  )

  it.live("every cluster flag given without --cluster is named", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* scratch
        const ran = yield* testbed(
          "run",
          experiment(dir),
          "--require",
          "docker",
          "--secret-file",
          join(dir, "secret"),
          "--lock-expiry",
          "20s",
          "--bundle-limit",
          "8",
          "--tls-ca",
          join(dir, "ca.pem"),
          "--output-dir",
          join(dir, "out")
        )
        assert.strictEqual(ran.code, 2, ran.stdout + ran.stderr)
        assert.include(
          ran.stderr,
          "--require, --secret-file, --lock-expiry, --bundle-limit, --tls-ca work only with --cluster URL"
        )
      })
    )
  )

  it.live("no FILE and no --resume: a usage error saying what to give", () =>
    Effect.gen(function* () {
      const ran = yield* testbed("run", "--plain")
      assert.strictEqual(ran.code, 2, ran.stdout + ran.stderr)
      assert.include(
        ran.stderr,
        "give the experiment file: testbed run FILE (or testbed run --resume RUNDIR --cluster URL)"
      )
    })
  )

  it.live("cluster status and prune without --cluster nor TESTBED_CLUSTER_URL: a usage error saying what to give", () =>
    Effect.gen(function* () {
      for (const command of [
        ["cluster", "status"],
        ["cluster", "prune", "--dry-run"]
      ]) {
        const ran = yield* testbed(...command)
        assert.strictEqual(ran.code, 2, ran.stdout + ran.stderr)
        assert.include(ran.stderr, "no cluster database: pass --cluster postgres://… or set TESTBED_CLUSTER_URL")
      }
    })
  )

  it.live(
    "--resume of a directory that is no cluster run, without FILE: refused naming it, the cluster not reached",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const dir = yield* scratch
          // Nothing listens on port 1: had the command gone on to the cluster, it would say the database is unreachable.
          const ran = yield* testbed("run", "--resume", dir, "--cluster", "postgres://postgres@127.0.0.1:1/none")
          assert.strictEqual(ran.code, 2, ran.stdout + ran.stderr)
          assert.include(ran.stderr, `cannot resume ${dir}: no cluster-journal.jsonl: not a cluster run`)
        })
      )
  )
})
