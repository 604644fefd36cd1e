// Test cases across hosts, for real: a throwaway Postgres, three runner processes (r3 labelled docker, declared
// without Docker: routing is what is tested) and coordinators run as `testbed run --cluster` processes.
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer, Schedule } from "effect"
import { Postgres, skipWithoutPostgres, freePort } from "./postgres.ts"
import {
  fixtures,
  placements,
  readEvents,
  type Runner,
  startRunner,
  testbed,
  background,
  waitForRunner
} from "./processes.ts"

class Runners extends Context.Service<Runners, { readonly url: string; readonly all: ReadonlyArray<Runner> }>()(
  "test/Runners"
) {
  static readonly layer = Layer.effect(
    Runners,
    Effect.gen(function* () {
      const { url } = yield* Postgres
      const start = (name: string, args: ReadonlyArray<string>) =>
        Effect.flatMap(freePort, (port) => startRunner(url, name, port, ["--no-detect", "--slots", "4", ...args]))
      const all = yield* Effect.all([start("r1", []), start("r2", []), start("r3", ["--labels", "docker"])], {
        concurrency: "unbounded"
      })
      return { url, all }
    })
  ).pipe(Layer.provideMerge(Postgres.layer))
}

/** What a report says about each test, without times, ports and ids (which differ between any two runs). */
const content = (runDir: string) => {
  const summary = JSON.parse(readFileSync(join(runDir, "experiment_summary.json"), "utf8"))
  const results = summary.tests.results as ReadonlyArray<Record<string, unknown>>
  return {
    status: summary.status,
    matrices: summary.matrices,
    tests: results
      .map((test) => ({
        name: test.name,
        status: test.status,
        participants: test.participants,
        artifacts: test.artifacts,
        attempts: (test.attempts as ReadonlyArray<Record<string, unknown>>).map((attempt) => ({
          status: attempt.status,
          steps: (attempt.steps as ReadonlyArray<Record<string, unknown>>).map((step) => [step.kind, step.status]),
          assertions: (attempt.assertions as ReadonlyArray<Record<string, unknown>>).map((a) => [
            a.kind,
            a.passed,
            String(a.message).replace(/:\d+/g, ":PORT")
          ])
        }))
      }))
      .sort((a, b) => String(a.name).localeCompare(String(b.name)))
  }
}

const finished = (runDir: string) =>
  readEvents(runDir)
    .filter((event) => event.type === "test.finished")
    .map((event) => event.data)

describe.skipIf(skipWithoutPostgres)("cluster", () => {
  layer(Runners.layer, { timeout: "150 seconds", excludeTestServices: true })((it) => {
    it.effect(
      "a matrix spreads over the three runners and its reports equal a local run's",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Runners
          const out = mkdtempSync(join(tmpdir(), "testbed-cluster-out-"))
          const file = `${fixtures}quickstart.yaml`
          const [remote, local] = yield* Effect.all(
            [
              testbed([
                "run",
                file,
                "--cluster",
                url,
                "--output-dir",
                join(out, "remote"),
                "--concurrency",
                "8",
                "--plain",
                "--lock-expiry",
                "6s"
              ]),
              testbed(["run", file, "--output-dir", join(out, "local"), "--plain"])
            ],
            { concurrency: "unbounded" }
          )
          assert.strictEqual(remote.code, 0, remote.stdout + remote.stderr)
          assert.strictEqual(local.code, 0, local.stdout + local.stderr)
          assert.deepStrictEqual(content(remote.runDir!), content(local.runDir!))
          const ran = placements(readEvents(remote.runDir!))
          assert.strictEqual(ran.length, 4)
          assert.deepStrictEqual([...new Set(ran.map((p) => p.runner))].sort(), ["r1", "r2", "r3"])
          // The artifacts came back in full.
          const log = join(remote.runDir!, "tests/echo-round-trip/attempt-1/client/stdout.log")
          assert.match(readFileSync(log, "utf8"), /echo ok: 5 messages/)
        }),
      240_000
    )

    it.effect(
      "a test that needs docker runs only on the docker runner; one nobody can serve is unschedulable",
      () =>
        Effect.gen(function* () {
          const { url } = yield* Runners
          const out = mkdtempSync(join(tmpdir(), "testbed-cluster-out-"))
          const file = `${fixtures}quickstart.yaml`
          const common = ["--cluster", url, "--output-dir", out, "--concurrency", "8", "--plain", "--lock-expiry", "6s"]
          const [docker, nowhere] = yield* Effect.all(
            [
              testbed(["run", file, ...common, "--require", "docker"]),
              testbed(["run", file, ...common, "--filter", "round trip", "--require", "docker", "--require", "quic"])
            ],
            { concurrency: "unbounded" }
          )
          assert.strictEqual(docker.code, 0, docker.stdout + docker.stderr)
          const ran = placements(readEvents(docker.runDir!))
          assert.strictEqual(ran.length, 4)
          assert.deepStrictEqual([...new Set(ran.map((p) => p.runner))], ["r3"])

          assert.strictEqual(nowhere.code, 1, nowhere.stdout + nowhere.stderr)
          const ends = finished(nowhere.runDir!)
          assert.deepStrictEqual(
            ends.map((data) => [data.status, data.errorMessage]),
            [["failed", "unschedulable: no runner has labels: quic"]]
          )
        }),
      240_000
    )

    it.effect(
      "a coordinator without the cluster secret is refused before anything runs",
      () =>
        Effect.gen(function* () {
          const { url, all } = yield* Runners
          const out = mkdtempSync(join(tmpdir(), "testbed-cluster-out-"))
          const runsOf = () =>
            all.flatMap((runner) => {
              const runs = join(runner.workdir, "runs")
              return existsSync(runs) ? readdirSync(runs) : []
            })
          const before = runsOf()
          const run = yield* testbed(
            [
              "run",
              `${fixtures}quickstart.yaml`,
              "--cluster",
              url,
              "--output-dir",
              out,
              "--filter",
              "round trip",
              "--plain"
            ],
            { TESTBED_CLUSTER_SECRET: "another-secret-of-enough-length" }
          )
          assert.strictEqual(run.code, 1, run.stdout + run.stderr)
          const ends = finished(run.runDir!)
          assert.strictEqual(ends.length, 1)
          assert.match(String(ends[0]?.errorMessage), /refused the attempt: bad signature/)
          // Nothing started on any runner.
          assert.deepStrictEqual(placements(readEvents(run.runDir!)), [])
          assert.deepStrictEqual(runsOf(), before)
        }),
      240_000
    )

    // Last: it kills a runner.
    it.effect(
      "a runner SIGKILLed mid-test: the attempt is recorded runner_lost and re-run on another runner",
      () =>
        Effect.gen(function* () {
          const { url, all } = yield* Runners
          const dir = mkdtempSync(join(tmpdir(), "testbed-cluster-kill-"))
          const marker = join(dir, "go")
          const file = join(dir, "blocked.yaml")
          writeFileSync(
            file,
            [
              "name: blocked",
              "test_timeout: 3 minutes",
              "tests:",
              "  - name: waits for the marker",
              "    services:",
              "      server: { implementation: node-echo, role: server }",
              "    steps:",
              "      - run:",
              "          name: wait",
              `          shell: 'while [ ! -f ${marker} ]; do sleep 0.1; done; echo released'`,
              ""
            ].join("\n")
          )
          const coordinator = background([
            "run",
            file,
            "--cluster",
            url,
            "--output-dir",
            join(dir, "out"),
            "--plain",
            "--lock-expiry",
            "6s"
          ])
          // Find the runner whose workdir holds the attempt.
          const victim = yield* Effect.suspend(() => {
            const found = all.find((runner) => {
              const runs = join(runner.workdir, "runs")
              return (
                existsSync(runs) &&
                readdirSync(runs).some((id) => existsSync(join(runs, id, "tests", "waits-for-the-marker")))
              )
            })
            return found === undefined ? Effect.fail("not yet" as const) : Effect.succeed(found)
          }).pipe(
            Effect.retry({ schedule: Schedule.spaced("200 millis") }),
            Effect.timeout("120 seconds"),
            Effect.orDie
          )
          victim.child.kill("SIGKILL")
          yield* waitForRunner(url, victim.name, false)
          writeFileSync(marker, "")
          const code = yield* Effect.promise(() => coordinator.exited())
          assert.strictEqual(code, 0, coordinator.output())
          const runDir = /HTML report: (.+)\/report\.html/.exec(coordinator.output())?.[1]
          const events = readEvents(runDir!)
          const ends = events.filter((event) => event.type === "test.finished").map((event) => event.data)
          assert.strictEqual(ends.length, 2)
          assert.strictEqual(ends[0]?.status, "interrupted")
          assert.strictEqual(ends[0]?.willRetry, true)
          assert.match(String(ends[0]?.errorMessage), new RegExp(`^runner_lost: runner ${victim.name} `))
          assert.strictEqual(ends[1]?.status, "passed")
          // The lost runner's last events may not have reached the coordinator before it died; the re-run's did.
          const ran = placements(events).map((p) => p.runner)
          assert.isAtLeast(ran.length, 1)
          assert.notStrictEqual(ran.at(-1), victim.name)
          assert.include(String(ends[0]?.errorMessage), `re-run on ${ran.at(-1)}`)
        }),
      240_000
    )
  })
})
