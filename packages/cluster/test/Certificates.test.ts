// The run's certificate on a runner, for real: a throwaway Postgres, one runner of two slots, four tests whose
// server (the built-in openssl plugin) needs the certificate. A runner made it again for every attempt, in one
// directory of the run: the attempts running beside it saw their certificate and key replaced under them (a TLS matrix
// over a cluster failed 76 cells that pass locally: "Path does not chain with any of the trust anchors", a
// certificate read half written), and the run's `certs/` stayed on the runner for good.
import { existsSync, readdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"
import { runOnCluster, startRunner, temporaryDirectory, testTimeout } from "./processes.ts"

/**
 * Four tests, two at a time: an openssl server (it requires the certificate) and a client that reads the certificate
 * and key twice, fails if either changed in between, then completes a handshake with the server against `{{ ca }}`.
 * t0 waits 3 s between its reads; t1–t3 do not, so t2 and t3 start on the runner's other slot while t0 waits.
 */
const experiment = Effect.gen(function* () {
  const dir = yield* temporaryDirectory("testbed-certificates-")
  const file = join(dir, "certs.yaml")
  const check = (wait: number) =>
    [
      "a=$(cat '{{ cert }}' '{{ key }}' | cksum)",
      `sleep ${wait}`,
      "b=$(cat '{{ cert }}' '{{ key }}' | cksum)",
      'test "$a" = "$b" || { echo "the certificate changed under this attempt"; exit 1; }',
      "echo | openssl s_client -connect '{{ target_host }}:{{ target_port }}' -CAfile '{{ ca }}' -verify_return_error -servername localhost"
    ].join("; ")
  const test = (i: number) => [
    `  - name: t${i}`,
    "    services:",
    "      s: { implementation: openssl, role: server }",
    `      c: { implementation: exec, role: client, target: s, parameters: { program: sh, args: ["-c", ${JSON.stringify(check(i === 0 ? 3 : 0))}] } }`
  ]
  writeFileSync(file, ["name: certs", "concurrency: 2", "tests:", ...[0, 1, 2, 3].flatMap(test), ""].join("\n"))
  return { file, out: join(dir, "out") }
})

describe.skipIf(skipWithoutPostgres)("the run's certificate on a runner", () => {
  layer(Postgres.layer, { timeout: Duration.millis(testTimeout), excludeTestServices: true })((it) => {
    it.effect(
      "attempts side by side each keep the certificate they started with, and none is left behind",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          const { file, out } = yield* experiment
          const runner = yield* startRunner(url, "certs", yield* freePort, [
            "--no-detect",
            "--labels",
            "openssl",
            "--slots",
            "2"
          ])
          // The coordinator with no openssl on its PATH (a laptop without it): the runner makes the certificates.
          const bare = yield* temporaryDirectory("testbed-coordinator-path-")
          const ran = yield* runOnCluster(file, url, out, [], { PATH: bare })
          assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr)
          assert.include(ran.stdout, "4 passed")
          // And it makes none of its own: one in the run directory would not be the one the tests used.
          assert.isFalse(existsSync(join(ran.runDir!, "certs")))
          // Every attempt's files went back to the coordinator, and the run's directory with them.
          const runs = join(runner.workdir, "runs")
          assert.deepStrictEqual(existsSync(runs) ? readdirSync(runs) : [], [])
        }),
      { timeout: testTimeout }
    )

    // Its services got no {{ cert }} and failed each on its own, saying nothing of why. The runner claims `openssl`
    // (by hand, with no openssl on its PATH): as a runner that offers tls-go (Go on PATH) and lacks openssl, which
    // makes every certificate.
    it.effect(
      "a runner that cannot make the certificate (no openssl on its PATH) refuses the attempt saying so",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Postgres
          const { file, out } = yield* experiment
          const empty = yield* temporaryDirectory("testbed-no-openssl-")
          yield* startRunner(
            url,
            "bare",
            yield* freePort,
            ["--no-detect", "--labels", "bare,openssl", "--slots", "2"],
            {
              env: { PATH: empty }
            }
          )
          const ran = yield* runOnCluster(file, url, out, ["--require", "bare", "--filter", "t1"])
          assert.strictEqual(ran.code, 1, ran.stdout + ran.stderr)
          assert.include(ran.stdout, "runner bare refused the attempt: cannot make the attempt's certificate")
        }),
      { timeout: testTimeout }
    )
  })
})
