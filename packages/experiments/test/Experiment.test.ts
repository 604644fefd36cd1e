import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { Experiment, ExperimentConfig } from "../src/index.ts"
import { fixtures } from "./support.ts"

describe("Experiment.prepare (--dry-run)", () => {
  it.effect("reports every problem of a file at once, each with its YAML path", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Experiment.prepare(`${fixtures}cases/invalid.yaml`))
      assert.strictEqual(error._tag, "ExperimentConfigInvalid")
      assert.deepStrictEqual(
        error.problems.map((problem) => problem.path),
        [
          "tests[0].timeout",
          "tests[0].services.server.implementation",
          "tests[0].services.client.target",
          "tests[0].services.client.parameters.count",
          "tests[0].services.client.parameters.colour",
          "tests[0].steps[0].run",
          "tests[0].assertions[0].service",
          "tests[0].assertions[1].pattern",
          "tests[1].services.only.role",
          "matrices[0].servers"
        ]
      )
      // Planning's problems (an unknown plugin) are placed in the file like the decoder's.
      assert.deepStrictEqual(
        error.problems.map((problem) => [problem.line, problem.column]),
        [
          [6, 14],
          [9, 25],
          [14, 17],
          [16, 18],
          [17, 19],
          [19, 14],
          [22, 18],
          [25, 18],
          [30, 15],
          [33, 14]
        ]
      )
      assert.include(error.message, `unknown implementation "no-such-plugin"`)
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("plans the fixtures: tests expanded from matrices, servers first, defaults filled in", () =>
    Effect.gen(function* () {
      const prepared = yield* Experiment.prepare(`${fixtures}tls-interop.yaml`)
      const plan = prepared.plan
      assert.strictEqual(plan.name, "tls-interop")
      assert.strictEqual(plan.concurrency, 2)
      assert.isTrue(plan.needsCertificate)
      assert.deepStrictEqual(
        plan.tests.map((test) => test.name),
        [
          "tls handshake [openssl server, openssl client]",
          "tls handshake [openssl server, gnutls client]",
          "tls handshake [gnutls server, openssl client]",
          "tls handshake [gnutls server, gnutls client]"
        ]
      )
      assert.deepStrictEqual(
        plan.tests[1]!.services.map((s) => [s.key, s.plugin.name, s.role, s.lifetime]),
        [
          ["server", "openssl", "server", "service"],
          ["client", "gnutls", "client", "task"]
        ]
      )
      const quick = yield* Experiment.prepare(`${fixtures}quickstart.yaml`, { concurrency: 1, filter: "matrix" })
      assert.strictEqual(quick.plan.concurrency, 1)
      assert.strictEqual(quick.plan.tests.length, 2)
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("plugins named in paths.plugins are loaded relative to the file", () =>
    Effect.gen(function* () {
      const prepared = yield* Experiment.prepare(`${fixtures}busybox-http.yaml`)
      assert.strictEqual(prepared.plan.tests[0]!.services[0]!.plugin.name, "busybox-http")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("accepts PANTHER's shape: services keyed by name, steps as a map, fast_fail, paths, logging", () =>
    Effect.gen(function* () {
      const config = yield* ExperimentConfig.parse(
        [
          "logging: { level: DEBUG }",
          "paths: { output_dir: outputs, log_dir: logs }",
          "fast_fail: { enabled: true, test_level: false }",
          "tests:",
          "  - name: t",
          "    network_environment: { type: localhost }",
          "    services:",
          "      s: { name: srv, implementation: node-echo, version: bundled, type: iut, role: server, ports: ['4443:4443'] }",
          "    steps: { wait: 2 }"
        ].join("\n"),
        "panther.yaml"
      )
      assert.strictEqual(config.tests?.[0]?.services?.s?.name, "srv")
      assert.deepStrictEqual(config.tests?.[0]?.steps, { wait: Duration.seconds(2) })
      const broken = yield* Effect.flip(ExperimentConfig.parse("tests: [\n", "broken.yaml"))
      assert.strictEqual(broken.problems.length > 0, true)
    })
  )

  it.effect("durations in the file take the TimeSpan forms and are decoded once, with the file", () =>
    Effect.gen(function* () {
      const config = yield* ExperimentConfig.parse(
        [
          "test_timeout: 1m30s",
          "timeout: 2 minutes",
          "tests:",
          "  - name: t",
          "    timeout: 45",
          "    services: { s: { implementation: node-echo, role: server, timeout: 500ms } }",
          "    steps:",
          "      - wait: 1.5",
          "      - run: { command: ['true'], timeout: 1h }",
          "    assertions: [{ type: service_responsive, service: s, timeout: 250ms }]"
        ].join("\n"),
        "durations.yaml"
      )
      const test = config.tests![0]!
      const [wait, run] = test.steps as ReadonlyArray<ExperimentConfig.Step>
      assert.deepStrictEqual(
        [
          config.test_timeout,
          config.timeout,
          test.timeout,
          test.services!.s!.timeout,
          wait && "wait" in wait ? wait.wait : undefined,
          run && "run" in run ? run.run.timeout : undefined
        ].map((d) => (d === undefined ? undefined : Duration.toMillis(d))),
        [90_000, 120_000, 45_000, 500, 1500, 3_600_000]
      )
      const bad = yield* Effect.flip(ExperimentConfig.parse("tests: [{ name: t, timeout: soon }]", "bad.yaml"))
      assert.deepStrictEqual(
        bad.problems.map((p) => [p.path, p.message]),
        [["tests[0].timeout", `not a duration: "soon" (use seconds, or e.g. "2s", "500ms", "1m30s", "2 minutes")`]]
      )
    })
  )
})
