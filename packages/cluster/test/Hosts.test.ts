// Runners on several hosts, each host a container: docs/cluster.md section 5 run for real. Every other cluster test
// runs its runners on 127.0.0.1 of this machine, which hides what differs between hosts: the advertised address
// (`--advertise IP:34431 --listen 0.0.0.0`), runners and the coordinator dialling each other across a network, the
// host names in the events, a database reached over the network, and a bundle fetched on a host that does not share
// the coordinator's file system. Here a Docker network of the test's own holds three runner containers (the image of
// runnerImage.ts: testbed installed from the workspace's packed tarballs, nothing of this checkout mounted), each
// with its own host name, its secret a read-only mounted file; Postgres listens on the network's gateway (this host)
// for that network's addresses only; the coordinator is `testbed run --cluster` on this host.
//
// It lives with the cluster's tests (not apps/testbed's) because what it checks is the cluster's: placement, the
// runners' identities, bundles, artifacts, runner_lost and `testbed cluster status`; it reuses their Postgres and
// process helpers.
import { createServer } from "node:http"
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Schedule } from "effect"
import { docker, dockerAnswers, labelScoped } from "./docker.ts"
import { Postgres, postgresBin } from "./postgres.ts"
import {
  backgroundScoped,
  type LoggedEvent,
  lockExpiry,
  placements,
  readEvents,
  runBudget,
  secret,
  testbed,
  testTimeout,
  waitForRunner
} from "./processes.ts"
import { buildRunnerImage, imagePrerequisites } from "./runnerImage.ts"

const isCI = process.env.CI === "true" || process.env.CI === "1"

const prerequisites = Object.entries({
  "a Docker engine (scripts/start-dockerd.sh)": dockerAnswers,
  "Postgres (Debian package postgresql)": postgresBin !== undefined,
  ...imagePrerequisites
})
  .filter(([, ok]) => !ok)
  .map(([what]) => what)

/** The runner port of docs/cluster.md, the same in every container (each has an address of its own). */
const runnerPort = 34431

interface Host {
  /** The container's host name (`--hostname`): what the runner reports as its host. */
  readonly hostname: string
  /** The runner's name: its host name and port, as a runner names itself when not told. */
  readonly runner: string
  readonly container: string
  readonly address: string
}

class Lab extends Context.Service<
  Lab,
  {
    readonly url: string
    readonly hosts: ReadonlyArray<Host>
    readonly gateway: string
    /** The test's directory (removed with everything else it made). */
    readonly dir: string
    /** An address on the gateway where a test's step can wait (`wget`) for `release`. */
    readonly markerUrl: string
    readonly release: () => void
  }
>()("test/Lab") {
  static readonly layer = Layer.effect(
    Lab,
    Effect.gen(function* () {
      const { label, value, dir } = yield* labelScoped("hosts")
      // A /24 of the test's own in 10.150–10.199 (the stages tests pick theirs in 10.200–10.249).
      const prefix = `10.${150 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`
      const subnet = `${prefix}.0/24`
      const gateway = `${prefix}.1`
      const network = `testbed-hosts-${value}`
      yield* docker(["network", "create", "--label", label, "--subnet", subnet, "--gateway", gateway, network])

      const [image, postgres] = yield* Effect.all(
        [
          buildRunnerImage(`testbed-runner-test:${value}`, label, join(dir, "image")),
          Effect.map(Layer.build(Postgres.reachableFrom({ address: gateway, subnet })), Context.get(Postgres))
        ],
        { concurrency: "unbounded" }
      )

      // The secret as docs/cluster.md section 2 keeps it: a file only its owner reads, mounted read-only.
      const etc = join(dir, "etc")
      mkdirSync(etc)
      writeFileSync(join(etc, "secret"), secret)
      chmodSync(join(etc, "secret"), 0o600)
      // The URL as section 4's cluster.env keeps it (section 5 passes it with --env-file, off the command line).
      writeFileSync(join(etc, "cluster.env"), `TESTBED_CLUSTER_URL=${postgres.url}\n`)
      chmodSync(join(etc, "cluster.env"), 0o600)

      const hosts = ["a", "b", "c"].map(
        (letter, i): Host => ({
          hostname: `lab-host-${letter}`,
          runner: `lab-host-${letter}:${runnerPort}`,
          container: `${network}-${letter}`,
          address: `${prefix}.${11 + i}`
        })
      )
      yield* Effect.forEach(hosts, (host) => startContainer(host, { label, network, image, url: postgres.url, etc }), {
        concurrency: "unbounded"
      })

      const marker = yield* markerServer(gateway)
      return { url: postgres.url, hosts, gateway, dir, ...marker }
    })
  )
}

/** docs/cluster.md section 5's `docker run`, on the test's network (see the docs for what differs and why). */
const startContainer = Effect.fn("Lab.startContainer")(function* (
  host: Host,
  lab: { label: string; network: string; image: string; url: string; etc: string }
) {
  const volume = `${host.container}-work`
  yield* docker(["volume", "create", "--label", lab.label, volume])
  yield* docker([
    "run",
    "-d",
    "--name",
    host.container,
    "--label",
    lab.label,
    "--restart",
    "unless-stopped",
    "--network",
    lab.network,
    "--ip",
    host.address,
    "--hostname",
    host.hostname,
    "-v",
    `${volume}:/var/lib/testbed-runner`,
    "-v",
    `${join(lab.etc, "secret")}:/run/secrets/testbed:ro`,
    "--env-file",
    join(lab.etc, "cluster.env"),
    lab.image,
    "testbed",
    "runner",
    "--secret-file",
    "/run/secrets/testbed",
    "--advertise",
    `${host.address}:${runnerPort}`,
    "--listen",
    "0.0.0.0",
    "--slots",
    "1",
    "--workdir",
    "/var/lib/testbed-runner",
    "--lock-expiry",
    lockExpiry
  ])
  // Live in testbed_runners, or the container ended: then its log says why.
  yield* Effect.raceFirst(
    waitForRunner(lab.url, host.runner, true),
    docker(["wait", host.container], testTimeout).pipe(
      Effect.flatMap(() => docker(["logs", "--tail", "50", host.container])),
      Effect.flatMap((log) => Effect.die(new Error(`runner container ${host.container} exited:\n${log}`)))
    )
  )
})

/** An HTTP server on the gateway answering /go with 404 until `release()`, then 200 (closed with the scope). */
const markerServer = (gateway: string) =>
  Effect.acquireRelease(
    Effect.callback<{ markerUrl: string; release: () => void; close: () => void }, Error>((resume) => {
      let released = false
      const server = createServer((request, response) => {
        response.statusCode = request.url === "/go" && released ? 200 : 404
        response.end()
      })
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen(0, gateway, () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(
          Effect.succeed({
            markerUrl: `http://${gateway}:${port}/go`,
            release: () => {
              released = true
            },
            close: () => server.close()
          })
        )
      })
    }),
    ({ close }) => Effect.sync(close)
  ).pipe(Effect.orDie)

/** `count` tests whose step prints the host it ran on and a file of the experiment's directory (from the bundle). */
const spreading = (dir: string, count: number, token: string) => {
  writeFileSync(join(dir, "data.txt"), `${token}\n`)
  const file = join(dir, "spread.yaml")
  const tests = Array.from({ length: count }, (_, i) => [
    `  - name: t${i + 1}`,
    "    services:",
    '      c: { implementation: exec, role: client, parameters: { program: "true" } }',
    "    steps:",
    "      - run:",
    "          name: where",
    "          shell: 'hostname; cat {{ experiment_dir }}/data.txt; sleep 2'",
    "          timeout: 2 minutes"
  ])
  writeFileSync(
    file,
    ["name: spread", `concurrency: ${count}`, "test_timeout: 4 minutes", "tests:", ...tests.flat(), ""].join("\n")
  )
  return file
}

/** One test whose step waits until the marker server answers 200 (the test releases it). */
const holding = (dir: string, markerUrl: string) => {
  const file = join(dir, "held.yaml")
  writeFileSync(
    file,
    [
      "name: held",
      "test_timeout: 4 minutes",
      "tests:",
      "  - name: held",
      "    services:",
      '      c: { implementation: exec, role: client, parameters: { program: "true" } }',
      "    steps:",
      "      - run:",
      "          name: wait",
      `          shell: 'hostname; until wget -q -O /dev/null ${markerUrl}; do sleep 0.2; done; echo released'`,
      "          timeout: 3 minutes",
      ""
    ].join("\n")
  )
  return file
}

const ends = (events: ReadonlyArray<LoggedEvent>) =>
  events
    .filter((event) => event.type === "test.finished")
    .map((event) => ({ test: event.entityId, status: event.data.status, errorMessage: event.data.errorMessage }))

/** The host each attempt reported when it began (its first state change). */
const attemptHosts = (events: ReadonlyArray<LoggedEvent>) =>
  events
    .filter((event) => event.type === "test.state_changed" && event.data.to === "SETTING_UP")
    .map((event) => ({
      test: event.entityId,
      runner: String(event.data.metadata?.runner),
      host: String(event.data.metadata?.host)
    }))

/**
 * `testbed cluster status` run on this host, as rows keyed by column (cut at the header's column starts: cells are
 * padded to their column's width, and some hold spaces).
 */
const clusterStatus = (url: string) =>
  Effect.map(testbed(["cluster", "status", "--cluster", url, "--lock-expiry", lockExpiry]), (status) => {
    assert.strictEqual(status.code, 0, status.stdout + status.stderr)
    const [header, ...lines] = status.stdout.trimEnd().split("\n")
    const names = header!.split(/\s{2,}/)
    const starts = names.map((name) => header!.indexOf(name))
    return lines.map((line) =>
      Object.fromEntries(names.map((name, i) => [name, line.slice(starts[i], starts[i + 1]).trim()]))
    )
  })

/** The labels and slots a runner printed when it started (`runner NAME: labels [a, b], …, N slot(s), at …`). */
const announced = (log: string) => {
  const match = /^runner \S+: labels \[([^\]]*)\], groups \[[^\]]*\], (\d+) slot\(s\)/m.exec(log)
  assert.isNotNull(match, `no start line in the runner's log:\n${log}`)
  return { labels: match![1]!.split(", ").filter((label) => label !== ""), slots: Number(match![2]) }
}

describe.skipIf(prerequisites.length > 0 && !isCI)("runners on several hosts (one container each)", () => {
  it("has what it needs: Docker, Postgres, npm, busybox-static, flock", () => {
    assert.deepStrictEqual(prerequisites, [])
  })

  layer(Lab.layer, { timeout: testTimeout, excludeTestServices: true })((it) => {
    it.effect(
      "an experiment spreads over the three containers: each test reports its container's host, and its files come back",
      () =>
        Effect.gen(function* () {
          const lab = yield* Lab
          const { url, hosts } = lab
          const dir = join(lab.dir, "spread")
          mkdirSync(dir)
          const token = `bundled-${Math.random().toString(36).slice(2)}`
          const file = spreading(dir, 6, token)
          const run = yield* testbed([
            "run",
            file,
            "--cluster",
            url,
            "--output-dir",
            join(dir, "out"),
            "--plain",
            "--lock-expiry",
            lockExpiry
          ])
          assert.strictEqual(run.code, 0, run.stdout + run.stderr)
          const events = readEvents(run.runDir!)
          assert.deepStrictEqual(
            ends(events)
              .map((end) => `${end.test} ${end.status}`)
              .sort(),
            ["t1", "t2", "t3", "t4", "t5", "t6"].map((test) => `${test} passed`),
            "every test passed, once"
          )
          const ran = attemptHosts(events)
          assert.strictEqual(ran.length, 6)
          // One slot each: the first three tests go to three different containers.
          assert.deepStrictEqual(
            [...new Set(ran.map((attempt) => attempt.runner))].sort(),
            hosts.map((h) => h.runner)
          )
          for (const attempt of ran) {
            const host = hosts.find((h) => h.runner === attempt.runner)
            assert.isDefined(host, `unknown runner ${attempt.runner}`)
            assert.strictEqual(attempt.host, host!.hostname, `${attempt.test}: the host its events name`)
            // The step's output, written in the container and fetched back: its `hostname`, and the bundled file.
            const stdout = readFileSync(
              join(run.runDir!, "tests", attempt.test, "attempt-1/steps/where.stdout.log"),
              "utf8"
            )
            assert.deepStrictEqual(stdout.trim().split("\n"), [host!.hostname, token], `${attempt.test}'s step output`)
          }
          // The reports say which host ran each test: the summary's attempts, the Markdown report's Hosts column.
          const summary = JSON.parse(readFileSync(join(run.runDir!, "experiment_summary.json"), "utf8"))
          const results = summary.tests.results as ReadonlyArray<{
            name: string
            attempts: ReadonlyArray<{ host?: string }>
          }>
          assert.deepStrictEqual(
            results.map((result) => [result.name, result.attempts.map((attempt) => attempt.host)]).sort(),
            ran.map((attempt) => [attempt.test, [attempt.host]]).sort()
          )
          const markdown = readFileSync(join(run.runDir!, "EXPERIMENT_REPORT.md"), "utf8")
          for (const attempt of ran) assert.include(markdown, `| ${attempt.test} | ✅ passed | 1 |`)
          for (const attempt of ran)
            assert.match(markdown, new RegExp(`\\| ${attempt.test} \\|.*\\| ${attempt.host} \\|`))
          for (const report of ["report.html", "EXPERIMENT_REPORT.md", "junit.xml", "ctrf-report.json"])
            assert.isTrue(existsSync(join(run.runDir!, report)), report)
          // `testbed cluster status` on this host lists each container's runner: live, its container's host name and
          // address, the labels and slots the runner announced when it started (detected in the container).
          const rows = yield* clusterStatus(url)
          for (const host of hosts) {
            const row = rows.find((r) => r.RUNNER === host.runner)
            assert.isDefined(row, `${host.runner} in cluster status: ${JSON.stringify(rows)}`)
            const { labels, slots } = announced(yield* docker(["logs", host.container]))
            assert.deepStrictEqual(
              [row!.STATE, row!.HOST, row!.ADDRESS, row!.LABELS],
              ["live", host.hostname, `${host.address}:${runnerPort}`, labels.join(",") || "-"],
              host.runner
            )
            // Free slots: its test may still count as running until its next heartbeat.
            assert.match(row!.FREE!, new RegExp(`^\\d+/${slots}$`), host.runner)
          }
        }),
      testTimeout
    )

    it.effect(
      "a runner container docker-killed mid-test: one runner_lost attempt, re-run in another container",
      () =>
        Effect.gen(function* () {
          const lab = yield* Lab
          const { url, hosts, markerUrl, release } = lab
          const dir = join(lab.dir, "held")
          mkdirSync(dir)
          const out = join(dir, "out")
          const coordinator = yield* backgroundScoped([
            "run",
            holding(dir, markerUrl),
            "--cluster",
            url,
            "--output-dir",
            out,
            "--plain",
            "--lock-expiry",
            lockExpiry
          ])
          // Killed once the coordinator knows where the attempt runs (its first events came back).
          const runner = yield* Effect.suspend(() => {
            if (coordinator.child.exitCode !== null)
              return Effect.die(new Error(`coordinator ended: ${coordinator.output()}`))
            const runDir = existsSync(out) ? readdirSync(out).map((name) => join(out, name))[0] : undefined
            if (runDir === undefined || !existsSync(join(runDir, "events.jsonl")))
              return Effect.fail("not yet" as const)
            const first = placements(readEvents(runDir))[0]
            return first === undefined ? Effect.fail("not yet" as const) : Effect.succeed(first.runner)
          }).pipe(Effect.retry({ schedule: Schedule.spaced("200 millis") }), Effect.timeout(runBudget), Effect.orDie)
          const victim = hosts.find((host) => host.runner === runner)
          assert.isDefined(victim, `unknown runner ${runner}`)
          yield* docker(["kill", victim!.container])
          release()
          const code = yield* Effect.promise(() => coordinator.exited())
          assert.strictEqual(code, 0, coordinator.output())
          const runDir = readdirSync(out).map((name) => join(out, name))[0]!
          const events = readEvents(runDir)
          const finished = ends(events)
          assert.deepStrictEqual(
            finished.map((end) => end.status),
            ["runner_lost", "passed"]
          )
          assert.match(String(finished[0]?.errorMessage), new RegExp(`^runner ${victim!.runner} `))
          const ran = attemptHosts(events)
          assert.strictEqual(ran.length, 2)
          assert.strictEqual(ran[0]?.host, victim!.hostname)
          const rerun = hosts.find((host) => host.runner === ran[1]?.runner)
          assert.isDefined(rerun)
          assert.notStrictEqual(rerun!.container, victim!.container)
          assert.strictEqual(ran[1]?.host, rerun!.hostname)
          const summary = JSON.parse(readFileSync(join(runDir, "experiment_summary.json"), "utf8"))
          assert.deepStrictEqual(
            summary.tests.results[0].attempts.map((attempt: { status: string; host?: string }) => [
              attempt.status,
              attempt.host
            ]),
            [
              ["runner_lost", victim!.hostname],
              ["passed", rerun!.hostname]
            ]
          )
          const stdout = readFileSync(join(runDir, "tests/held/attempt-1/steps/wait.stdout.log"), "utf8")
          assert.deepStrictEqual(stdout.trim().split("\n"), [rerun!.hostname, "released"])
          // `testbed cluster status` shows the killed runner gone once it has not been heard from for the lock
          // expiry (mostly at the first look: its attempt was re-run after that), the two others live.
          const after = yield* clusterStatus(url).pipe(
            Effect.filterOrFail(
              (rows) => rows.find((row) => row.RUNNER === victim!.runner)?.STATE === "gone",
              (rows) => rows
            ),
            Effect.retry({ schedule: Schedule.spaced("2 seconds"), times: 15 }),
            Effect.catch((rows) => Effect.succeed(rows))
          )
          assert.deepStrictEqual(
            hosts.map((host) => [host.runner, after.find((row) => row.RUNNER === host.runner)?.STATE]),
            hosts.map((host) => [host.runner, host === victim ? "gone" : "live"]),
            JSON.stringify(after)
          )
          // `--restart unless-stopped` (the guide's) did not bring back a container killed by hand.
          assert.strictEqual(
            yield* docker(["inspect", "-f", "{{.State.Running}} {{.RestartCount}}", victim!.container]),
            "false 0"
          )
        }),
      testTimeout
    )
  })
})
