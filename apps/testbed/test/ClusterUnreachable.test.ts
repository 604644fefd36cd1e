// A cluster database that cannot be reached, as a user meets it: `testbed runner` and `testbed run --cluster` both
// end with exit 3 and one line naming the database, not a stack trace with exit 1 (Effect's message-storage
// migrations die on an SqlError; ClusterLayers maps that defect to ClusterUnavailable).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { testbedWithin } from "./support.ts"

/**
 * Each command is ~1.5 s of CPU (the CLI and the cluster's modules loaded, the connection refused): 28 s at load ~37
 * on the 2-core CI machine, against the 30 s the other CLI tests give a command. A deadline, not a speed check.
 */
const deadline = 300_000
const testbed = testbedWithin(deadline)

// Port 1 on loopback: nothing listens there.
const unreachable = "postgres://postgres@127.0.0.1:1/none"

/**
 * Runs `command` with a secret file in a temporary directory of its own, removed once it has run (it was made once
 * per test file and left behind: one more directory in the temporary directory at every run).
 */
const withSecretFile = <A, E>(command: (secretFile: string) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    let dir = ""
    const result = yield* Effect.acquireUseRelease(
      Effect.sync(() => {
        dir = mkdtempSync(join(tmpdir(), "testbed-unreachable-"))
        writeFileSync(join(dir, "secret"), "an-unreachable-cluster-secret\n", { mode: 0o600 })
        return join(dir, "secret")
      }),
      command,
      () => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    assert.isFalse(existsSync(dir), `${dir} is left behind`)
    return result
  })
const experiment = join(import.meta.dirname, "../../../fixtures/experiments/quickstart.yaml")

const assertUnavailable = (ran: { code: number; stdout: string; stderr: string }) => {
  assert.strictEqual(ran.code, 3, ran.stdout + ran.stderr)
  assert.include(ran.stderr, "testbed: cluster database: PgConnection: Failed to connect")
  assert.notInclude(ran.stderr, "cluster database: cluster database")
  assert.notInclude(ran.stderr, "    at ")
}

describe("an unreachable cluster database", () => {
  it.live(
    "testbed runner exits 3 naming the database",
    () =>
      Effect.map(
        withSecretFile((secretFile) =>
          testbed("runner", "--cluster", unreachable, "--no-detect", "--secret-file", secretFile)
        ),
        assertUnavailable
      ),
    deadline + 30_000
  )

  it.live(
    "testbed run --cluster exits 3 naming the database",
    () =>
      Effect.map(
        withSecretFile((secretFile) =>
          testbed("run", experiment, "--cluster", unreachable, "--secret-file", secretFile, "--plain")
        ),
        assertUnavailable
      ),
    deadline + 30_000
  )
})
