// Bundles and prune, for real: a throwaway Postgres, a runner that cannot see the coordinator's files (a mount
// namespace of its own with an empty tmpfs over the experiment's directory), a second runner to kill, and
// coordinators run as `testbed run --cluster` processes.
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Bundle from "../src/Bundle.ts"
import * as BundleCache from "../src/BundleCache.ts"
import * as BundleSources from "../src/BundleSources.ts"
import * as ClusterLayers from "../src/ClusterLayers.ts"
import * as BundleStore from "../src/internal/bundleStore.ts"
import * as Status from "../src/Status.ts"
import { freePort, Postgres, skipWithoutPostgres } from "./postgres.ts"
import {
  content,
  placements,
  readEvents,
  type Runner,
  runOnCluster,
  startRunner,
  testbed,
  testTimeout,
  waitForRunner
} from "./processes.ts"

class Cluster extends Context.Service<
  Cluster,
  { readonly url: string; readonly base: string; readonly isolated: Runner; readonly doomed: Runner }
>()("test/BundleCluster") {
  static readonly layer = Layer.effect(
    Cluster,
    Effect.gen(function* () {
      const { url } = yield* Postgres
      // The coordinator's side: the isolated runner sees an empty directory here.
      const base = yield* tempDir("testbed-bundle-")
      const start = (name: string, label: string, hidden?: string) =>
        Effect.flatMap(freePort, (port) =>
          startRunner(url, name, port, ["--no-detect", "--slots", "2", "--labels", label], { hidden })
        )
      const [isolated, doomed] = yield* Effect.all([start("isolated", "isolated", base), start("doomed", "doomed")], {
        concurrency: "unbounded"
      })
      return { url, base, isolated, doomed }
    })
  ).pipe(Layer.provideMerge(Layer.merge(Postgres.layer, NodeServices.layer)))
}

/**
 * An experiment in `base/exp` that needs what it references: a plugin in `../plugins` (paths.plugins), a script
 * next to it, a data file in `../data` (through `{{ experiment_dir }}`).
 */
const writeExperiment = (base: string) => {
  for (const dir of ["exp", "plugins", "data"]) mkdirSync(join(base, dir), { recursive: true })
  writeFileSync(
    join(base, "plugins", "bundled-echo.mjs"),
    `export default {
  name: "bundled-echo",
  type: "iut",
  description: "node-echo's server, from a plugin directory",
  protocols: ["tcp-echo"],
  versions: ["bundled"],
  roles: {
    server: {
      command: { program: "{{ node }}", args: ["{{ assets }}/echo-server.mjs", "--host", "{{ host }}", "--port", "{{ port }}"] },
      readiness: { kind: "log", pattern: "echo server listening", timeout: "10 seconds" }
    }
  }
}
`
  )
  writeFileSync(join(base, "exp", "check.sh"), "#!/bin/sh\necho script ran\n")
  chmodSync(join(base, "exp", "check.sh"), 0o755)
  writeFileSync(join(base, "data", "greeting.txt"), "hello from data\n")
  const file = join(base, "exp", "bundled.yaml")
  writeFileSync(
    file,
    [
      "name: bundled",
      "concurrency: 2",
      "test_timeout: 60 seconds",
      "paths: { plugins: ../plugins }",
      "tests:",
      "  - name: plugin and files from the bundle",
      "    services:",
      "      server: { implementation: bundled-echo, role: server }",
      "      client: { implementation: node-echo, role: client, target: server, parameters: { count: 2 } }",
      "    steps:",
      "      - run:",
      "          name: files",
      "          shell: '{{ experiment_dir }}/check.sh && cat {{ experiment_dir }}/../data/greeting.txt'",
      "    assertions:",
      "      - { type: exit_code, service: client, equals: 0 }",
      "      - { type: output_matches, step: files, pattern: 'script ran' }",
      "      - { type: output_matches, step: files, pattern: 'hello from data' }",
      "  - name: echo",
      "    services:",
      "      server: { implementation: node-echo, role: server }",
      "      client: { implementation: node-echo, role: client, target: server }",
      "    assertions:",
      "      - { type: output_matches, service: client, pattern: 'echo ok: 3 messages' }",
      ""
    ].join("\n")
  )
  return file
}

/** A fresh directory under the temp directory, removed with the test's scope. */
const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** Runs an effect on the cluster's Postgres. */
const onPostgres = <A, E, R>(url: string, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provide(ClusterLayers.postgres(Redacted.make(url))))

/** A bundle of one header and its contents, stored as `runId`'s. */
const store = (url: string, runId: string, header: Bundle.Header, contents: ReadonlyArray<Uint8Array>) => {
  const bytes = Bundle.pack(header, contents)
  const sha = Bundle.sha256(bytes)
  return Effect.as(onPostgres(url, BundleStore.put(runId, sha, bytes)), sha)
}

const fileEntry = (path: string, size: number) => ({ path, size, executable: false, kind: "file" as const })

describe.skipIf(skipWithoutPostgres)("bundles", () => {
  layer(Cluster.layer, { timeout: Duration.millis(testTimeout), excludeTestServices: true })((it) => {
    it.effect(
      "a runner that shares no path with the coordinator runs the experiment from its bundle; reports equal a local run's",
      () =>
        Effect.gen(function* () {
          const { url, base, isolated } = yield* Cluster
          const file = writeExperiment(base)
          const common = ["--output-dir", join(base, "exp", "out"), "--plain"]
          const remote = yield* testbed(["run", file, "--cluster", url, "--require", "isolated", ...common])
          assert.strictEqual(remote.code, 0, remote.stdout + remote.stderr + isolated.output())
          const local = yield* testbed(["run", file, ...common])
          assert.strictEqual(local.code, 0, local.stdout + local.stderr)
          assert.deepStrictEqual(content(remote.runDir!), content(local.runDir!))
          const events = readEvents(remote.runDir!)
          assert.deepStrictEqual(
            placements(events).map((p) => p.runner),
            ["isolated", "isolated"]
          )
          // The runner's cache paths never reach the record: they read as the coordinator's experiment directory.
          const log = readFileSync(join(remote.runDir!, "events.jsonl"), "utf8")
          assert.notInclude(log, join(isolated.workdir, "bundles"))
          assert.include(log, join(base, "exp", "check.sh"))
          // One bundle, unpacked once in the runner's cache (which the coordinator can see: it is not hidden).
          const cached = execFileSync("ls", [join(isolated.workdir, "bundles")], { encoding: "utf8" }).trim()
          assert.match(cached, /^[0-9a-f]{64}$/)
          assert.isTrue(existsSync(join(isolated.workdir, "bundles", cached, "files", "plugins", "bundled-echo.mjs")))
          // The run's output directory is not bundled.
          assert.isFalse(existsSync(join(isolated.workdir, "bundles", cached, "files", "exp", "out")))
        }),
      testTimeout
    )

    it.effect(
      "a bundle over the limit is refused before the run, naming its biggest file",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Cluster
          const dir = yield* tempDir("testbed-bundle-big-")
          writeFileSync(
            join(dir, "small.yaml"),
            "tests:\n  - name: t\n    services:\n      s: { implementation: node-echo, role: server }\n"
          )
          // Sparse: 3 MiB on paper, nothing on disk.
          writeFileSync(join(dir, "capture.pcap"), "")
          truncateSync(join(dir, "capture.pcap"), 3 * 1024 * 1024)
          const run = yield* testbed([
            "run",
            join(dir, "small.yaml"),
            "--cluster",
            url,
            "--bundle-limit",
            "1",
            "--output-dir",
            join(dir, "out"),
            "--plain"
          ])
          assert.strictEqual(run.code, 2, run.stdout + run.stderr)
          assert.match(run.stderr, /bundle would hold 2 files, 3\.0 MiB: over the limit of 1\.0 MiB/)
          assert.include(run.stderr, `${join(dir, "capture.pcap")} (3.0 MiB)`)
          // The same, typed, from the library; the output directory is left out of the count.
          mkdirSync(join(dir, "out"), { recursive: true })
          truncateSync(join(dir, "capture.pcap"), 2048)
          writeFileSync(join(dir, "out", "old-run.log"), "x".repeat(4096))
          const error = yield* Effect.flip(
            BundleSources.collect({
              file: join(dir, "small.yaml"),
              pluginDirectories: [],
              exclude: [join(dir, "out")],
              maxBytes: 1024
            })
          )
          assert.strictEqual(error._tag, "BundleTooLarge")
          if (error._tag === "BundleTooLarge") {
            assert.deepStrictEqual(
              error.biggest.map((file) => [file.path, file.size]),
              [
                [join(dir, "capture.pcap"), 2048],
                [join(dir, "small.yaml"), readFileSync(join(dir, "small.yaml")).length]
              ]
            )
          }
        }),
      // It starts a coordinator: at load ~40 its start alone took over a minute (see `runBudget`).
      testTimeout
    )

    it.effect("a tampered bundle is refused by the runner's cache, and nothing is unpacked", () =>
      Effect.gen(function* () {
        const { url } = yield* Cluster
        const workdir = yield* tempDir("testbed-bundle-cache-")
        const header: Bundle.Header = {
          version: 1,
          experiment: "e.yaml",
          plugins: [],
          entries: [fileEntry("e.yaml", 5)]
        }
        const sha = yield* store(url, "tampered-run", header, [new TextEncoder().encode("tests")])
        yield* onPostgres(
          url,
          Effect.flatMap(
            SqlClient.SqlClient,
            (sql) =>
              sql`UPDATE testbed_bundle_pieces SET bytes = overlay(bytes placing '\\x00'::bytea from 12) WHERE sha256 = ${sha}`
          )
        )
        const error = yield* Effect.flip(
          onPostgres(url, BundleCache.unpacked(BundleCache.make({ workdir, maxBytes: 1024 * 1024 }), sha))
        )
        assert.strictEqual(error._tag, "BundleCorrupt")
        assert.match(error.message, /does not match its sha256/)
        assert.isFalse(existsSync(join(workdir, "bundles", sha)))
        // Over the runner's limit: refused before a piece is read.
        const big = yield* Effect.flip(
          onPostgres(url, BundleCache.unpacked(BundleCache.make({ workdir, maxBytes: 10 }), sha))
        )
        assert.strictEqual(big._tag, "BundleTooLarge")
      })
    )

    it.effect("entries with `..`, absolute names or links are refused; nothing lands outside the cache", () =>
      Effect.gen(function* () {
        const { url } = yield* Cluster
        const workdir = yield* tempDir("testbed-bundle-cache-")
        const bytes = new TextEncoder().encode("pwned")
        const cases: ReadonlyArray<[string, Bundle.Header, string]> = [
          [
            "dotdot",
            { version: 1, experiment: "e", plugins: [], entries: [fileEntry("e", 0), fileEntry("../../escape", 5)] },
            "BundleEntryUnsafe"
          ],
          [
            "absolute",
            { version: 1, experiment: "e", plugins: [], entries: [fileEntry("e", 0), fileEntry("/tmp/escape", 5)] },
            "BundleEntryUnsafe"
          ],
          [
            "plugin dir",
            { version: 1, experiment: "e", plugins: ["a/../../x"], entries: [fileEntry("e", 5)] },
            "BundleEntryUnsafe"
          ],
          [
            "link",
            {
              version: 1,
              experiment: "e",
              plugins: [],
              // A link is no kind a bundle has: the header does not decode.
              entries: [fileEntry("e", 0), { ...fileEntry("l", 5), kind: "symlink" as "file" }]
            },
            "BundleCorrupt"
          ]
        ]
        for (const [name, header, tag] of cases) {
          const contents = header.entries.map((entry) => (entry.size === 0 ? new Uint8Array() : bytes))
          const sha = yield* store(url, `unsafe-${name}`, header, contents)
          const error = yield* Effect.flip(
            onPostgres(url, BundleCache.unpacked(BundleCache.make({ workdir, maxBytes: 1024 * 1024 }), sha))
          )
          assert.strictEqual(error._tag, tag, `${name}: ${error.message}`)
        }
        assert.isFalse(existsSync(join(workdir, "escape")))
        assert.isFalse(existsSync(join(workdir, "..", "escape")))
        assert.isFalse(existsSync("/tmp/escape"))
      })
    )

    // After the tests that use the doomed runner: it kills it. Before any other run finishes: it counts them.
    it.effect(
      "prune removes a gone runner and finished runs' bundles and messages, and leaves the live runner",
      () =>
        Effect.gen(function* () {
          const { url, isolated, doomed } = yield* Cluster
          doomed.child.kill("SIGKILL")
          yield* waitForRunner(url, doomed.name, false)
          const args = ["cluster", "prune", "--cluster", url, "--runners-gone-for", "3s", "--older-than", "0s"]
          const bundles = onPostgres(
            url,
            Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT count(*)::int AS n FROM testbed_bundles`)
          )
          const before = yield* bundles
          const dry = yield* testbed([...args, "--dry-run"])
          assert.strictEqual(dry.code, 0, dry.stdout + dry.stderr)
          assert.match(dry.stdout, /would remove 1 runner\(s\)\n {2}runner doomed \(last seen \d+s ago\)/)
          assert.match(dry.stdout, /would remove 1 finished run\(s\), [1-9]\d* message\(s\), [1-9]\d* repl(?:y|ies)/)
          assert.match(dry.stdout, /would remove 1 bundle\(s\)/)
          assert.deepStrictEqual(yield* bundles, before)
          const names = (rows: ReadonlyArray<{ readonly name: string }>) => rows.map((row) => row.name).sort()
          assert.deepStrictEqual(names(yield* Status.runners(Redacted.make(url), Duration.seconds(6))), [
            "doomed",
            "isolated"
          ])

          const real = yield* testbed(args)
          assert.strictEqual(real.code, 0, real.stdout + real.stderr)
          assert.match(real.stdout, /removed 1 runner\(s\)\n {2}runner doomed/)
          assert.match(real.stdout, /removed 1 bundle\(s\)/)
          assert.deepStrictEqual(names(yield* Status.runners(Redacted.make(url), Duration.seconds(6))), [isolated.name])
          assert.strictEqual(Number((yield* bundles)[0]?.n), Number(before[0]?.n) - 1)
          const again = yield* testbed(args)
          assert.match(again.stdout, /removed 0 runner\(s\)[\s\S]*removed 0 finished run\(s\), 0 message\(s\)/)
        }),
      testTimeout
    )

    it.effect(
      "testbed runner --bundle-limit refuses a bigger bundle naming the flag; --bundle-cache evicts past its bound",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Cluster
          const port = yield* freePort
          const tight = yield* startRunner(url, "tight", port, [
            "--no-detect",
            "--labels",
            "tight",
            "--bundle-limit",
            "1",
            "--bundle-cache",
            "0"
          ])
          const dir = yield* tempDir("testbed-bundle-tight-")
          const experiment = (name: string) => {
            mkdirSync(join(dir, name))
            writeFileSync(
              join(dir, name, "e.yaml"),
              [
                `name: ${name}`,
                "tests:",
                "  - name: echo",
                "    services:",
                "      server: { implementation: node-echo, role: server }",
                "      client: { implementation: node-echo, role: client, target: server }",
                ""
              ].join("\n")
            )
            return join(dir, name, "e.yaml")
          }
          const run = (file: string, ...args: ReadonlyArray<string>) =>
            testbed(["run", file, "--cluster", url, "--require", "tight", "--plain", ...args])
          // 2 MiB that do not compress: the stored bundle is over the runner's 1 MiB.
          const big = experiment("big")
          writeFileSync(join(dir, "big", "noise.bin"), randomBytes(2 * 1024 * 1024))
          const refused = yield* run(big, "--bundle-limit", "3", "--output-dir", join(dir, "big-out"))
          assert.notStrictEqual(refused.code, 0)
          assert.match(
            readFileSync(join(refused.runDir!, "events.jsonl"), "utf8"),
            /over this runner's limit of 1\.0 MiB \(raise it with testbed runner --bundle-limit MIB\)/
          )
          const bundles = () => readdirSync(join(tight.workdir, "bundles")).filter((name) => !name.startsWith("."))
          for (const name of ["first", "second"]) {
            const ran = yield* run(experiment(name), "--output-dir", join(dir, `${name}-out`))
            assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr + tight.output())
          }
          // A bound of 0: after the second bundle's unpack the first (no attempt uses it) went.
          assert.strictEqual(bundles().length, 1)
          assert.match(tight.output(), /bundle cache: evicted [0-9a-f]{12} /)
        }),
      testTimeout
    )

    // The runner's own plugins and the experiment's clashed: every attempt was refused ("a service plugin named
    // bundled-echo is already registered"), so a runner started with --plugins to offer a plugin could not run the
    // experiment that brings it. The runner's copy here cannot serve (its server is `false`): the pass shows the
    // experiment's copy ran.
    it.effect(
      "a runner started with --plugins holding the experiment's plugin runs the experiment with the experiment's copy",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Cluster
          const dir = yield* tempDir("testbed-bundle-site-")
          const file = writeExperiment(dir)
          mkdirSync(join(dir, "site"))
          writeFileSync(
            join(dir, "site", "bundled-echo.mjs"),
            readFileSync(join(dir, "plugins", "bundled-echo.mjs"), "utf8")
              .replace('versions: ["bundled"]', 'versions: ["site"]')
              .replace('program: "{{ node }}", args: [', 'program: "false", args: [')
          )
          const port = yield* freePort
          yield* startRunner(url, "site", port, ["--no-detect", "--labels", "site", "--plugins", join(dir, "site")])
          const ran = yield* runOnCluster(file, url, join(dir, "out"), ["--require", "site"])
          assert.strictEqual(ran.code, 0, ran.stdout + ran.stderr)
          assert.include(ran.stdout, "2 passed")
        }),
      testTimeout
    )
  })
})
