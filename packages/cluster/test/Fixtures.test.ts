// The repository's own experiments, each run locally and over a cluster, for real: a throwaway Postgres and one runner
// started as a user would start it on a lab machine (detection on, its work directory given relative to where it was
// started). Their reports must say the same. Every other cluster test writes experiments of its own, and this is
// where four faults hid that users met at once: the TLS experiments failed on runners (each attempt made the run's
// certificate again, under the attempts beside it; a relative --workdir gave services relative paths), the replay
// experiment failed ("blob … not found": the script's blobs/ was not bundled), and the out-of-tree plugin's was
// unschedulable with no word of how to offer it.
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"
import { content, fixtures, lockExpiry, startRunner, temporaryDirectory, testbed, testTimeout } from "./processes.ts"

/** Experiments of fixtures/experiments/ that need no Docker (the docker ones are the hosts test's and stages'). */
const experiments = ["quickstart", "tls-interop", "replay", "capture", "fleet", "busybox-http"]

describe.skipIf(skipWithoutPostgres)("the repository's experiments over a cluster", () => {
  layer(Postgres.layer, { timeout: Duration.millis(testTimeout), excludeTestServices: true })((it) => {
    it.effect(
      "each reports what a local run reports",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          const out = yield* temporaryDirectory("testbed-fixtures-")
          // busybox-http's plugin comes with the experiment (paths.plugins): the runner offers it by hand.
          const runner = yield* startRunner(url, "lab", yield* freePort, ["--labels", "busybox-http", "--slots", "4"], {
            cwd: tmpdir()
          })
          for (const name of experiments) {
            const file = join(fixtures, `${name}.yaml`)
            const where = ["--plain", "--output-dir", join(out, name)]
            const local = yield* testbed(["run", file, ...where])
            const remote = yield* testbed(["run", file, "--cluster", url, "--lock-expiry", lockExpiry, ...where])
            assert.strictEqual(remote.code, local.code, `${name}\n${remote.stdout}${remote.stderr}${runner.output()}`)
            assert.deepStrictEqual(content(remote.runDir!), content(local.runDir!), name)
          }
        }),
      // Twelve runs, each with a coordinator or a CLI start: several minutes on a loaded 2-core machine.
      { timeout: 3 * testTimeout }
    )
  })
})
