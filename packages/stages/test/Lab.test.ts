// Links and impairments against the real engine and real namespaces: a veth link carries traffic; a rate is
// measured within 20% and a loss of 20% within binomial bounds over 500 probes (both by `verify`); a link taken
// down and flapped is observed from the other end; delay on a kernel without sch_netem is ImpairmentUnsupported;
// nothing of it is ever on the host.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as Impairment from "../src/Impairment.ts"
import { Stages } from "../src/Stages.ts"
import { engineAvailable, fixtures, leftovers, randomSubnets, sandbox, stagesLayer } from "./support.ts"

const netem = (() => {
  try {
    return (
      execFileSync("sh", ["-c", "zcat /proc/config.gz 2>/dev/null | grep -c '^CONFIG_NET_SCH_NETEM=[ym]'"], {
        encoding: "utf8"
      }).trim() !== "0"
    )
  } catch {
    return false
  }
})()

/** Two busybox nodes joined by a link (10.x.y.1/30 ↔ .2/30) and sharing a network. */
const labYaml = (name: string, prefixes: readonly [string, string], extra = "") =>
  [
    `name: ${name}`,
    `networks: { lan: { subnet: ${prefixes[0]}.0/24, internal: true } }`,
    "nodes:",
    ...["a", "b"].map((n, i) =>
      [
        `  ${n}:`,
        "    image: testbed/busybox:fixture",
        `    build: { context: ${join(fixtures, "images", "busybox")} }`,
        `    networks: [{ network: lan, address: ${prefixes[0]}.${10 + i} }]`,
        "    command: [/bin/sh]",
        "    tty: true"
      ].join("\n")
    ),
    "links:",
    `  - { a: { node: a, interface: p2p, address: ${prefixes[1]}.1/30 }, b: { node: b, interface: p2p, address: ${prefixes[1]}.2/30 } }`,
    extra
  ].join("\n")

const settings = (input: Impairment.SettingsEncoded) => Schema.decodeUnknownSync(Impairment.Settings)(input)

/** Host-side view: qdiscs and nftables tables of the host's own namespace. */
const hostState = () => ({
  qdiscs: execFileSync("tc", ["qdisc", "show"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => /^qdisc (tbf|netem) /.test(l)),
  tables: execFileSync("nft", ["list", "tables"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes("testbed_"))
})

describe.skipIf(!engineAvailable)("links and impairments (real Docker, real namespaces)", () => {
  it.live(
    "a link carries traffic; rate and loss are measured; down and flap are seen; delay needs sch_netem",
    () => {
      const box = sandbox([])
      const prefixes = randomSubnets()
      mkdirSync(join(box.catalog, "lab"), { recursive: true })
      writeFileSync(join(box.catalog, "lab", "stage.yaml"), labYaml("lab", prefixes))
      const before = hostState()
      return Effect.gen(function* () {
        const stages = yield* Stages
        yield* stages.up(yield* stages.load("lab"))
        const a = yield* stages.runner("a")
        const ping = yield* a.run({ program: "ping", args: ["-c", "2", "-W", "2", `${prefixes[1]}.2`] })
        assert.include(ping.stdout, "2 packets received")

        const rated = yield* stages.impair("a:p2p", settings({ rate: "2mbit" }), { verify: true })
        const rate = rated.measured.find((m) => m.measure === "rate")
        assert.isDefined(rate)
        assert.isTrue(rate !== undefined && Math.abs(rate.achieved - 2e6) <= 0.2 * 2e6, JSON.stringify(rate))

        const lossy = yield* stages.impair("a:p2p", settings({ loss: "20%" }), { verify: true })
        const loss = lossy.measured.find((m) => m.measure === "loss")
        // 500 probes at p = 0.2: four standard deviations are 7.2 points.
        assert.isTrue(
          loss !== undefined && loss.samples === 500 && Math.abs(loss.achieved - 20) <= 7.4,
          JSON.stringify(loss)
        )
        assert.deepStrictEqual(hostState(), before)

        // Down: b no longer hears a; cleared: it does again.
        yield* stages.impair("a:p2p", settings({ down: true }))
        const cut = yield* Effect.exit(a.run({ program: "ping", args: ["-c", "1", "-W", "1", `${prefixes[1]}.2`] }))
        assert.isTrue(Exit.isFailure(cut))
        yield* stages.impair("a:p2p", settings({}))
        // Cleared, the link is reported up by the time impair returns.
        assert.strictEqual((yield* a.run({ shell: "cat /sys/class/net/p2p/operstate" })).stdout.trim(), "up")
        yield* a.run({ program: "ping", args: ["-c", "1", "-W", "2", `${prefixes[1]}.2`] })

        // A flap seen from inside the node: the link goes down, then comes back up.
        const done = yield* Ref.make(false)
        const flapping = yield* Effect.forkChild(
          stages.flap("a:p2p", { down: 3000, up: 500, count: 1 }).pipe(Effect.ensuring(Ref.set(done, true)))
        )
        const states = new Set<string>()
        for (let i = 0; i < 60 && !(yield* Ref.get(done)); i++) {
          const link = yield* a.run({ shell: "cat /sys/class/net/p2p/operstate" })
          states.add(link.stdout.trim())
          yield* Effect.sleep("150 millis")
        }
        yield* Fiber.join(flapping)
        assert.include([...states], "down")
        // The kernel reports the link up through its link watch, up to a second after `ip link set up`: the flap
        // returns only once it has, so one read right after it sees the link up.
        assert.strictEqual((yield* a.run({ shell: "cat /sys/class/net/p2p/operstate" })).stdout.trim(), "up")

        const delay = yield* Effect.exit(stages.impair("a:p2p", settings({ delay: "20ms", rate: "1mbit" })))
        if (netem) assert.isTrue(Exit.isSuccess(delay), "this kernel has netem: delay must apply")
        else {
          assert.isTrue(Exit.isFailure(delay))
          const error = Exit.isFailure(delay) ? JSON.stringify(delay.cause) : ""
          assert.include(error, "ImpairmentUnsupported")
          assert.include(error, "sch_netem")
          // Refused before anything changed: the rate of the same request was not applied either.
          const pid = execFileSync("docker", ["inspect", "-f", "{{.State.Pid}}", yield* stages.containerOf("a")], {
            encoding: "utf8"
          }).trim()
          const qdisc = execFileSync("nsenter", [`--target=${pid}`, "--net", "tc", "qdisc", "show", "dev", "p2p"], {
            encoding: "utf8"
          })
          assert.notInclude(qdisc, "tbf")
        }
        yield* stages.down()
        assert.deepStrictEqual(yield* leftovers(stages.namespace), { containers: 0, networks: 0 })
        assert.deepStrictEqual(hostState(), before)
      }).pipe(
        Effect.ensuring(Effect.ignore(Stages.use((s) => Effect.andThen(s.down(), s.prune())))),
        Effect.provide(stagesLayer(box)),
        Effect.ensuring(Effect.sync(() => box.cleanup()))
      )
    },
    240_000
  )
})
