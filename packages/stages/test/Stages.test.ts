// up → status → exec → down against the real engine, and the promises around it: switching stages, interrupts and
// failures that leave nothing behind, host settings put back to their earlier values. What Stages decides alone
// (up twice, readiness deadlines, failed hooks) is unit-tested on the in-memory engine in StagesLogic.test.ts.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, type FileSystem, Option, Schedule } from "effect"
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Docker } from "../src/Docker.ts"
import * as HostSettings from "../src/HostSettings.ts"
import { ProcessOwner as Owner } from "@testbed/commands"
import { Stages } from "../src/Stages.ts"
import { engineAvailable, fixtures, leftovers, type Sandbox, sandbox, stagesLayer } from "./support.ts"

/** Runs a test body against a private catalog; whatever happens, its namespace is pruned and the copy removed. */
const withSandbox = <A, E>(
  names: ReadonlyArray<string>,
  body: (stages: Stages["Service"], box: Sandbox) => Effect.Effect<A, E, Docker | FileSystem.FileSystem>,
  edit?: (text: string, name: string) => string
) => {
  const box = sandbox(names, edit)
  return Effect.gen(function* () {
    const stages = yield* Stages
    return yield* body(stages, box).pipe(
      Effect.ensuring(
        Effect.gen(function* () {
          yield* Effect.ignore(stages.down())
          yield* Effect.ignore(stages.prune())
        })
      )
    )
  }).pipe(Effect.provide(stagesLayer(box)), Effect.ensuring(Effect.sync(() => box.cleanup())))
}

const nothingLeft = (stages: Stages["Service"]) =>
  Effect.gen(function* () {
    const left = yield* leftovers(stages.namespace)
    assert.deepStrictEqual(left, { containers: 0, networks: 0 })
  })

describe.skipIf(!engineAvailable)("Stages (real Docker)", () => {
  it.live(
    "routing-lab: up, status, exec, down",
    () =>
      withSandbox(["routing-lab"], (stages, box) =>
        Effect.gen(function* () {
          const up = yield* stages.up(yield* stages.load("routing-lab"))
          assert.deepStrictEqual(up.nodes.map((n) => n.node).sort(), ["client1", "client2"])
          const recorded = JSON.parse(readFileSync(join(box.stateDir, "stage.json"), "utf8"))
          assert.strictEqual(recorded.name, "routing-lab")

          const status = yield* stages.status()
          assert.strictEqual(status.current?.runId, up.runId)
          assert.deepStrictEqual(
            status.nodes.map((n) => [n.node, n.state, n.addresses]),
            [
              ["client1", "running", { net1: `${box.prefixes[0]}.10` }],
              ["client2", "running", { net2: `${box.prefixes[1]}.10` }]
            ]
          )

          const missing = yield* Effect.flip(stages.runner("client9"))
          assert.strictEqual(missing._tag, "NodeNotFound")
          assert.include(missing.message, "nodes: client1, client2")

          const runner = yield* stages.runner("client1")
          const result = yield* runner.run({ shell: "hostname; cat /proc/self/status | grep CapEff; ls /root/src" })
          const [hostname, capEff, listing] = result.stdout.trim().split("\n")
          assert.strictEqual(hostname, "client1")
          // NET_ADMIN is bit 12 and NET_RAW bit 13 of the effective capabilities.
          const caps = BigInt(`0x${capEff?.split(/\s+/)[1]}`)
          assert.isTrue((caps & (1n << 12n)) !== 0n && (caps & (1n << 13n)) !== 0n)
          assert.strictEqual(listing, "hello.sh")

          // The clients are on separate networks: client1 cannot reach client2.
          const ping = yield* Effect.exit(
            runner.run({ program: "ping", args: ["-c", "1", "-W", "1", `${box.prefixes[1]}.10`] })
          )
          assert.isTrue(Exit.isFailure(ping))

          const down = yield* stages.down()
          assert.deepStrictEqual(down, Option.some("routing-lab"))
          assert.isFalse(existsSync(join(box.stateDir, "stage.json")))
          yield* nothingLeft(stages)
          assert.deepStrictEqual(yield* stages.down(), Option.none())
        })
      ),
    180_000
  )

  it.live(
    "switching stages brings the first one down, and the compose form works",
    () =>
      withSandbox(
        ["routing-lab", "routing-lab-compose"],
        (stages) =>
          Effect.gen(function* () {
            yield* stages.up(yield* stages.load("routing-lab"))
            const compose = yield* stages.load("routing-lab-compose")
            assert.strictEqual(compose.stage.name, "routing-lab-2")
            yield* stages.up(compose)
            const status = yield* stages.status()
            assert.strictEqual(status.current?.name, "routing-lab-2")
            const docker = yield* Docker
            const all = yield* docker.listContainers({ "testbed.namespace": stages.namespace })
            assert.deepStrictEqual([...new Set(all.map((c) => c.Labels["testbed.stage"]))], ["routing-lab-2"])
            const runner = yield* stages.runner("client2")
            const result = yield* runner.run({ program: "ls", args: ["/root/src"], cwd: "/" })
            assert.strictEqual(result.stdout.trim(), "hello.sh")
          }),
        // Same subnets in both forms: only one can exist at a time, so this also proves the first went down.
        (text, name) =>
          name === "routing-lab-compose" ? text.replace("name: routing-lab", "name: routing-lab-2") : text
      ),
    180_000
  )

  it.live(
    "an interrupt in the middle of up leaves no container, no network and no record",
    () =>
      withSandbox(
        ["routing-lab"],
        (stages, box) =>
          Effect.gen(function* () {
            const docker = yield* Docker
            const fiber = yield* Effect.forkChild(stages.up(yield* stages.load("routing-lab")))
            // Wait until up is really in the middle: both containers exist and run (readiness never holds).
            yield* docker.listContainers({ "testbed.namespace": stages.namespace }).pipe(
              Effect.filterOrFail((cs) => cs.length === 2 && cs.every((c) => c.State === "running")),
              Effect.retry(Schedule.spaced("200 millis")),
              Effect.timeout("90 seconds")
            )
            const exit = yield* Fiber.interrupt(fiber).pipe(Effect.andThen(Fiber.await(fiber)))
            assert.isTrue(Exit.hasInterrupts(exit))
            yield* nothingLeft(stages)
            assert.isFalse(existsSync(join(box.stateDir, "stage.json")))
          }),
        (text) =>
          text.replaceAll(
            "ready: [{ command: [test, -d, /root/src], timeout: 20 seconds }]",
            'ready: [{ command: ["false"], timeout: 10 minutes }]'
          )
      ),
    180_000
  )

  it.live(
    "a node whose container exits fails up at once (the engine's die event), not after its readiness timeout",
    () =>
      withSandbox(
        ["routing-lab"],
        (stages) =>
          Effect.gen(function* () {
            const error = yield* Effect.flip(stages.up(yield* stages.load("routing-lab")))
            assert.strictEqual(error._tag, "NodeNotReady")
            assert.include(error.message, "container exited with code 3")
            yield* nothingLeft(stages)
          }).pipe(Effect.timeout("150 seconds")),
        (text) =>
          text
            .replace("command: [/bin/sh]", 'command: [sh, -c, "sleep 1; exit 3"]')
            .replace("test, -d, /root/src], timeout: 20 seconds", "test, -d, /nonexistent], timeout: 10 minutes")
      ),
    180_000
  )

  it.live(
    "host settings are applied on up and restored to their earlier values on down and after a failed up",
    () => {
      // An interface this test owns, with a non-default earlier value, so restoring cannot pass by accident.
      const iface = `tbt${Math.floor(Math.random() * 0xffffff).toString(16)}`
      execFileSync("ip", ["link", "add", iface, "type", "bridge"])
      writeFileSync(`/proc/sys/net/ipv4/conf/${iface}/arp_ignore`, "2\n")
      const extra = `    - { name: ${iface}, arp: false, ipv4: { arp_ignore: "1" } }\n`
      return withSandbox(
        ["routing-lab-arp-off"],
        (stages, box) =>
          Effect.gen(function* () {
            const loaded = yield* stages.load("routing-lab-arp-off")
            yield* stages.up(loaded)
            assert.strictEqual(yield* HostSettings.readSysctl(`net.ipv4.conf.${iface}.arp_ignore`), "1")
            assert.isFalse(yield* HostSettings.readArp(iface))
            const recorded = JSON.parse(readFileSync(join(box.stateDir, "stage.json"), "utf8"))
            const bridges = recorded.hostRestore
              .filter((r: { kind: string }) => r.kind === "arp")
              .map((r: { interface: string }) => r.interface)
            assert.strictEqual(bridges.length, 3)
            for (const bridge of bridges) assert.isFalse(yield* HostSettings.readArp(bridge))

            yield* stages.down()
            assert.strictEqual(yield* HostSettings.readSysctl(`net.ipv4.conf.${iface}.arp_ignore`), "2")
            assert.isTrue(yield* HostSettings.readArp(iface))

            // A failing up hook runs after the host settings: they must be put back too.
            const failing = {
              ...loaded,
              stage: { ...loaded.stage, hooks: { up: [{ node: "client1", command: ["false"] }] } }
            }
            const error = yield* Effect.flip(stages.up(failing))
            assert.strictEqual(error._tag, "HookFailed")
            assert.strictEqual(yield* HostSettings.readSysctl(`net.ipv4.conf.${iface}.arp_ignore`), "2")
            assert.isTrue(yield* HostSettings.readArp(iface))
            yield* nothingLeft(stages)
          }),
        (text) => `${text}${extra}`
      ).pipe(Effect.ensuring(Effect.sync(() => execFileSync("ip", ["link", "del", iface]))))
    },
    180_000
  )

  it.live(
    "readiness (healthcheck, log line, command, tcp port) and up/down hooks",
    () =>
      withSandbox([], (stages, box) =>
        Effect.gen(function* () {
          const dir = join(box.catalog, "probe")
          mkdirSync(join(dir, "shared"), { recursive: true })
          writeFileSync(
            join(dir, "stage.yaml"),
            [
              "name: probe",
              `networks: { lan: { subnet: ${box.prefixes[0]}.0/24 } }`,
              "nodes:",
              "  server:",
              "    image: testbed/busybox:fixture",
              `    build: { context: ${join(fixtures, "images", "busybox")} }`,
              `    networks: [{ network: lan, address: ${box.prefixes[0]}.20 }]`,
              "    mounts: [{ source: shared, target: /shared }]",
              "    command: [sh, -c, 'sleep 1; touch /tmp/ok; echo ready-now; exec nc -ll -p 8080 -e cat']",
              "    healthcheck: { test: [test, -e, /tmp/ok], interval: 500 millis }",
              "    ready:",
              "      - { healthy: true, timeout: 60 seconds }",
              "      - { log: ready-now }",
              "      - { command: [test, -e, /tmp/ok] }",
              "      - { tcp: 8080 }",
              "hooks:",
              "  up: [{ node: server, command: [sh, -c, 'echo up > /shared/up-ran'] }]",
              "  down: [{ node: server, command: [sh, -c, 'echo down > /shared/down-ran'] }]"
            ].join("\n")
          )
          yield* stages.up(yield* stages.load("probe"))
          const status = yield* stages.status()
          assert.strictEqual(status.nodes[0]?.health, "healthy")
          assert.strictEqual(readFileSync(join(dir, "shared", "up-ran"), "utf8"), "up\n")
          assert.isFalse(existsSync(join(dir, "shared", "down-ran")))
          yield* stages.down()
          assert.strictEqual(readFileSync(join(dir, "shared", "down-ran"), "utf8"), "down\n")
          yield* nothingLeft(stages)

          // A hook that outlives its timeout fails up, and up leaves nothing behind.
          const loaded = yield* stages.load("probe")
          const slow = { node: "server", command: ["sleep", "30"], timeout: Duration.seconds(1) }
          const error = yield* Effect.flip(stages.up({ ...loaded, stage: { ...loaded.stage, hooks: { up: [slow] } } }))
          assert.strictEqual(error._tag, "HookFailed")
          assert.include(error.message, "timed out")
          yield* nothingLeft(stages)
        })
      ),
    180_000
  )

  it.live(
    "prune removes what no recorded stage owns and keeps the current stage",
    () =>
      withSandbox(["routing-lab"], (stages) =>
        Effect.gen(function* () {
          const up = yield* stages.up(yield* stages.load("routing-lab"))
          const docker = yield* Docker
          // A leftover of an earlier run in this project, as a killed `up` would leave it.
          yield* docker.createNetwork({
            name: `leftover-${up.runId.slice(0, 8)}`,
            labels: { "testbed.namespace": stages.namespace, "testbed.stage": "old", "testbed.run": "killed-run" }
          })
          const removed = yield* stages.prune()
          assert.deepStrictEqual(removed, { containers: 0, networks: 1 })
          const left = yield* leftovers(stages.namespace)
          assert.deepStrictEqual(left, { containers: 2, networks: 2 })
          assert.strictEqual((yield* stages.status()).nodes.filter((n) => n.state === "running").length, 2)
        })
      ),
    180_000
  )

  it.live(
    "pyroute stage1 comes up as written: $PYROUTE_SRC_DIR from its .env, host bridges named by driver_opts",
    () => {
      // Unique bridge names: other tests (and other stages on this engine) may run at the same time.
      const tag = Math.floor(Math.random() * 0xfffff).toString(16)
      const bridges = [`tbp1${tag}`, `tbp2${tag}`] as const
      return withSandbox(
        ["pyroute-stage1", "routing-lab"],
        (stages, box) =>
          Effect.gen(function* () {
            const loaded = yield* stages.load("pyroute-stage1")
            yield* stages.up(loaded)
            for (const bridge of bridges) assert.isTrue(existsSync(`/sys/class/net/${bridge}`), bridge)
            const runner = yield* stages.runner("client1")
            const result = yield* runner.run({ shell: "ls /~/src; ip -4 -o addr show eth0" })
            assert.include(result.stdout, "hello.sh")
            assert.include(result.stdout, `${box.prefixes[0]}.10/24`)
            yield* stages.down()
            for (const bridge of bridges) assert.isFalse(existsSync(`/sys/class/net/${bridge}`), bridge)
            yield* nothingLeft(stages)
          }),
        (text) =>
          text
            .replace("bridge.name: net1", `bridge.name: ${bridges[0]}`)
            .replace("bridge.name: net2", `bridge.name: ${bridges[1]}`)
      )
    },
    180_000
  )

  it.live(
    "two ups and a down of one project at the same time take turns: nothing fails, one stage is left",
    () =>
      withSandbox(["routing-lab"], (stages, box) =>
        Effect.gen(function* () {
          const loaded = yield* stages.load("routing-lab")
          const results = yield* Effect.all([stages.up(loaded), stages.up(loaded), stages.up(loaded)], {
            concurrency: "unbounded"
          })
          const recorded = JSON.parse(readFileSync(join(box.stateDir, "stage.json"), "utf8")).runId as string
          assert.include(
            results.map((r) => r.runId),
            recorded
          )
          const docker = yield* Docker
          const containers = yield* docker.listContainers({ "testbed.namespace": stages.namespace })
          assert.deepStrictEqual(
            containers.map((c) => [c.Labels["testbed.run"], c.State]),
            [
              [recorded, "running"],
              [recorded, "running"]
            ]
          )
          assert.strictEqual((yield* docker.listNetworks({ "testbed.namespace": stages.namespace })).length, 2)
          const [down, up] = yield* Effect.all([stages.down(), stages.up(loaded)], { concurrency: "unbounded" })
          assert.isTrue(Option.isSome(down))
          assert.strictEqual((yield* stages.status()).current?.runId ?? up.runId, up.runId)
        })
      ),
    300_000
  )

  it.live(
    "orphans of dead processes go, whatever their project; a live owner's and a recorded stage's stay",
    () =>
      withSandbox([], (stages, box) =>
        Effect.gen(function* () {
          const docker = yield* Docker
          const me = yield* Owner.of()
          const dead = Owner.format({ ...me, pid: spawnSync("true").pid as number })
          const tag = Math.floor(Math.random() * 0xffffff).toString(16)
          const elsewhere = join(box.dir, "elsewhere")
          mkdirSync(elsewhere)
          // A record in another project that keeps the run "kept-run" (a stage brought up and left up).
          writeFileSync(
            join(elsewhere, "stage.json"),
            JSON.stringify({
              name: "kept",
              runId: `kept-${tag}`,
              namespace: "other",
              source: "/x",
              startedAt: "2026-01-01T00:00:00.000Z",
              hostRestore: []
            })
          )
          const make = (name: string, labels: Record<string, string>) =>
            docker.createNetwork({
              name: `orphan-${name}-${tag}`,
              labels: {
                "testbed.namespace": `other-${tag}`,
                "testbed.stage": "s",
                "testbed.run": `${name}-${tag}`,
                ...labels
              }
            })
          yield* make("killed-run", { "testbed.owner": dead, "testbed.lifetime": "process" })
          yield* make("killed-up", { "testbed.owner": dead, "testbed.state": join(box.dir, "nowhere") })
          yield* make("live", { "testbed.owner": Owner.format(me), "testbed.lifetime": "process" })
          yield* make("kept", { "testbed.owner": dead, "testbed.state": elsewhere })
          yield* make("unlabelled", {})
          yield* stages.prune()
          const left = (yield* docker.listNetworks({ "testbed.namespace": `other-${tag}` })).map((n) => n.Name).sort()
          assert.deepStrictEqual(left, [`orphan-kept-${tag}`, `orphan-live-${tag}`, `orphan-unlabelled-${tag}`])
          for (const name of left) yield* docker.removeNetwork(name)
        })
      ),
    120_000
  )
})
