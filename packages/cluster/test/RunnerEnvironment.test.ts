// What a test's processes see of the runner's environment, for real: a runner started as the docs' systemd unit does
// it (the URL in TESTBED_CLUSTER_URL, no --cluster on its command line) with PGPASSWORD set too, and a test whose
// service prints its environment. Both reached every service with the database's password; the cluster secret
// already did not. The URL comes from the variable, or the runner would not have joined.
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import * as ClusterUrl from "../src/ClusterUrl.ts"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"
import { runOnCluster, secret, startRunner, temporaryDirectory, testTimeout } from "./processes.ts"

describe("ClusterUrl.load", () => {
  it.effect(
    "the flag, else TESTBED_CLUSTER_URL; both variables leave the environment; PGPASSWORD goes into the URL",
    () =>
      Effect.gen(function* () {
        process.env.TESTBED_CLUSTER_URL = "postgres://runner@db.lab:5432/testbed"
        process.env.PGPASSWORD = "p@ss word"
        const fromEnv = yield* ClusterUrl.load(undefined)
        assert.strictEqual(Redacted.value(fromEnv), "postgres://runner:p%40ss%20word@db.lab:5432/testbed")
        assert.isUndefined(process.env.TESTBED_CLUSTER_URL)
        assert.isUndefined(process.env.PGPASSWORD)
        // A URL that names its password keeps it; the flag wins over the variable.
        process.env.TESTBED_CLUSTER_URL = "postgres://other@elsewhere/x"
        process.env.PGPASSWORD = "ignored"
        const fromFlag = yield* ClusterUrl.load("postgres://runner:own@db.lab/testbed")
        assert.strictEqual(Redacted.value(fromFlag), "postgres://runner:own@db.lab/testbed")
        assert.isUndefined(process.env.TESTBED_CLUSTER_URL)
        const missing = yield* Effect.flip(ClusterUrl.load(undefined))
        assert.strictEqual(missing._tag, "ClusterUrlMissing")
        assert.include(missing.message, "pass --cluster postgres://… or set TESTBED_CLUSTER_URL")
      })
  )
})

describe.skipIf(skipWithoutPostgres)("a runner's environment", () => {
  layer(Postgres.layer, { timeout: Duration.millis(testTimeout), excludeTestServices: true })((it) => {
    it.effect(
      "TESTBED_CLUSTER_URL, PGPASSWORD and the cluster secret never reach a test's processes",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          const dir = yield* temporaryDirectory("testbed-runner-env-")
          // The throwaway server trusts 127.0.0.1: a password the URL gains from PGPASSWORD is not asked for.
          const password = "pg-password-not-for-tests"
          const runner = yield* startRunner(url, "env", yield* freePort, ["--no-detect", "--labels", "env"], {
            urlFromEnv: true,
            env: { PGPASSWORD: password, MARKER_FOR_TEST: "inherited" }
          })
          const file = join(dir, "env.yaml")
          writeFileSync(
            file,
            [
              "name: env",
              "tests:",
              "  - name: prints its environment",
              "    services:",
              "      c: { implementation: exec, role: client, parameters: { program: env } }",
              ""
            ].join("\n")
          )
          const ran = yield* runOnCluster(file, url, join(dir, "out"), ["--require", "env"])
          assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr + runner.output())
          const printed = readFileSync(join(ran.runDir!, "tests/prints-its-environment/attempt-1/c/stdout.log"), "utf8")
          // The service did get the runner's environment (else the checks below would prove nothing)...
          assert.include(printed, "MARKER_FOR_TEST=inherited")
          // ...but none of its credentials.
          assert.notInclude(printed, "TESTBED_CLUSTER_URL")
          assert.notInclude(printed, password)
          assert.notInclude(printed, url)
          assert.notInclude(printed, secret)
        }),
      testTimeout
    )
  })
})
