// Up and down of a 10-node stage (two networks, busybox nodes) on the real engine: testbed's bounded-parallel
// up/down beside a sequential baseline (the same code with concurrency 1: one container created, connected
// and started after the other, removed one after the other), measured in the same run, alternating rounds (which
// side goes first alternates too); it prints the medians, the median and range of the rounds' own ratios, and the
// load average over the rounds.
// Where the time goes is read from the engine's own events (network create, container create, connect, start),
// recorded during every measured up: for each kind, when the first and the last happened after `up` began.
// When Debian's docker-compose (v1) is on PATH, the compose form of the same stage is also brought up and down
// with it (`docker-compose up -d` / `down`) and with testbed, for comparison.
// Run: node_modules/.bin/node bench/stages.ts [rounds]   (needs a Docker engine; builds testbed/busybox:fixture)
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer, Stream } from "effect"
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { cpus, loadavg, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { EventBus } from "../packages/events/src/EventBus.ts"
import { Docker } from "../packages/stages/src/Docker.ts"
import { Stages } from "../packages/stages/src/Stages.ts"

const rounds = Number(process.argv[2] ?? 3)
// The engine is shared: this run's stage (and so its containers and networks) has a name of its own.
const stageName = `bench-ten-${process.pid}`
const nodes = 10
const repo = resolve(import.meta.dirname, "..")
const dir = mkdtempSync(join(tmpdir(), "testbed-bench-stages-"))
const a = 200 + Math.floor(Math.random() * 50)
const b = Math.floor(Math.random() * 127) * 2

const stageYaml = [
  `name: ${stageName}`,
  "networks:",
  `  left: { subnet: 10.${a}.${b}.0/24, internal: true }`,
  `  right: { subnet: 10.${a}.${b + 1}.0/24, internal: true }`,
  "nodes:",
  ...Array.from({ length: nodes }, (_, i) =>
    [
      `  n${i}:`,
      "    image: testbed/busybox:fixture",
      `    build: { context: ${join(repo, "fixtures", "images", "busybox")} }`,
      `    networks: [{ network: ${i % 2 === 0 ? "left" : "right"} }]`,
      "    command: [/bin/sh]",
      "    tty: true"
    ].join("\n")
  )
].join("\n")
mkdirSync(join(dir, "stages", stageName), { recursive: true })
writeFileSync(join(dir, "stages", stageName, "stage.yaml"), `${stageYaml}\n`)

const composeYaml = [
  "services:",
  ...Array.from({ length: nodes }, (_, i) =>
    [
      `  n${i}:`,
      "    image: testbed/busybox:fixture",
      "    command: /bin/sh",
      "    stdin_open: true",
      "    tty: true",
      `    networks: [${i % 2 === 0 ? "left" : "right"}]`
    ].join("\n")
  ),
  "networks:",
  `  left: { internal: true, ipam: { config: [{ subnet: 10.${a}.${b}.0/24 }] } }`,
  `  right: { internal: true, ipam: { config: [{ subnet: 10.${a}.${b + 1}.0/24 }] } }`
].join("\n")
const composeDir = join(dir, "bench-ten-compose")
mkdirSync(composeDir, { recursive: true })
writeFileSync(join(composeDir, "docker-compose.yml"), `${composeYaml}\n`)
const composeAvailable = spawnSync("docker-compose", ["version"], { stdio: "ignore" }).status === 0
const project = `tbbench${process.pid}`
const dockerCompose = (args: ReadonlyArray<string>) =>
  Effect.sync(() => {
    const result = spawnSync("docker-compose", ["-p", project, ...args], { cwd: composeDir, encoding: "utf8" })
    if (result.status !== 0) throw new Error(`docker-compose ${args.join(" ")}: ${result.stderr}`)
  })
const composeCycle = Effect.gen(function* () {
  const up = yield* seconds(dockerCompose(["up", "-d"]))
  const down = yield* seconds(dockerCompose(["down"]))
  return { up, down }
})

const engine = Layer.mergeAll(Docker.layer, EventBus.layer, NodeServices.layer)
const stagesWith = (concurrency: number, name: string) =>
  Stages.layer({ catalog: join(dir, "stages"), stateDir: join(dir, name), concurrency }).pipe(
    Layer.provideMerge(engine)
  )

const seconds = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const start = performance.now()
    yield* effect
    return (performance.now() - start) / 1000
  })

interface Phases {
  readonly [action: string]: readonly [first: number, last: number]
}

/** The engine's events about this stage's networks and containers while `effect` runs, in ms after it began. */
const phasesOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const docker = yield* Docker
    const seen: Array<{ action: string; at: number }> = []
    const events = yield* docker.events({ type: ["container", "network"], event: ["create", "connect", "start"] })
    const began = Date.now()
    yield* Effect.forkScoped(
      Stream.runForEach(events, (e) =>
        Effect.sync(() => {
          if ((e.Actor.Attributes?.name ?? "").startsWith(stageName)) {
            seen.push({ action: `${e.Type} ${e.Action}`, at: e.timeNano / 1e6 - began })
          }
        })
      )
    )
    const result = yield* effect
    // The engine sends events as they happen; give the last ones a moment to arrive.
    yield* Effect.sleep("200 millis")
    const phases: Record<string, readonly [number, number]> = {}
    for (const { action, at } of seen) {
      const [first, last] = phases[action] ?? [at, at]
      phases[action] = [Math.min(first, at), Math.max(last, at)]
    }
    return { result, phases: phases as Phases }
  }).pipe(Effect.scoped)

const cycleOf = (ref: string) =>
  Effect.gen(function* () {
    const stages = yield* Stages
    const loaded = yield* stages.load(ref)
    const { result: up, phases } = yield* phasesOf(seconds(stages.up(loaded)))
    const down = yield* seconds(stages.down())
    return { up, down, phases }
  })
const cycle = cycleOf(stageName)

const describePhases = (label: string, phases: Phases, up: number) => {
  const order = ["network create", "container create", "network connect", "container start"]
  const parts = order
    .filter((k) => phases[k] !== undefined)
    .map(
      (k) =>
        `${k.replace("container ", "").replace("network ", "net ")} ${phases[k]?.map((t) => Math.round(t)).join("–")}`
    )
  return `  ${label.padEnd(12)} ${parts.join(", ")}; up returned at ${Math.round(up * 1000)} ms`
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? Number.NaN

const program = Effect.gen(function* () {
  // Warm-up: builds the image if missing and lets the engine settle; not measured.
  yield* cycle.pipe(Effect.provide(stagesWith(nodes, "warm")))
  const parallel: Array<{ up: number; down: number; phases: Phases }> = []
  const sequential: Array<{ up: number; down: number; phases: Phases }> = []
  const loads: Array<number> = [loadavg()[0] ?? 0]
  for (let i = 0; i < rounds; i++) {
    // Which side goes first alternates: neither always finds the engine just after the other's teardown.
    const sides = [
      Effect.map(cycle.pipe(Effect.provide(stagesWith(nodes, "parallel"))), (x) => void parallel.push(x)),
      Effect.map(cycle.pipe(Effect.provide(stagesWith(1, "sequential"))), (x) => void sequential.push(x))
    ]
    for (const side of i % 2 === 0 ? sides : sides.reverse()) yield* side
    loads.push(loadavg()[0] ?? 0)
  }
  const row = (label: string, xs: ReadonlyArray<{ up: number; down: number }>) =>
    `${label.padEnd(34)} up ${median(xs.map((x) => x.up)).toFixed(2)} s   down ${median(xs.map((x) => x.down)).toFixed(2)} s`
  console.log(`stage of ${nodes} nodes on 2 networks, median of ${rounds} rounds`)
  console.log(row("sequential baseline (concurrency 1)", sequential))
  console.log(row(`testbed (concurrency ${nodes})`, parallel))
  const ratio = (f: (x: { up: number; down: number }) => number) =>
    (median(sequential.map(f)) / median(parallel.map(f))).toFixed(2)
  // The ratio within each round (its two sides ran back to back), then the median and range of those.
  const paired = (f: (x: { up: number; down: number }) => number) => {
    const each = sequential.map((q, i) => f(q) / f(parallel[i]!))
    return `${median(each).toFixed(2)}x (${Math.min(...each).toFixed(2)}-${Math.max(...each).toFixed(2)})`
  }
  console.log(
    `speed-up, ratio of the medians: up ${ratio((x) => x.up)}x, down ${ratio((x) => x.down)}x, up+down ${ratio((x) => x.up + x.down)}x`
  )
  console.log(
    `speed-up, median (range) of the rounds' own ratios: up ${paired((x) => x.up)} (aim >= 2x), down ${paired((x) => x.down)}, up+down ${paired((x) => x.up + x.down)}`
  )
  const medianRound = <T extends { up: number }>(xs: ReadonlyArray<T>) =>
    [...xs].sort((x, y) => x.up - y.up)[Math.floor(xs.length / 2)]
  const [p, q] = [medianRound(parallel), medianRound(sequential)]
  console.log("where the time goes (engine events of the median round, ms after up began, first–last):")
  if (q) console.log(describePhases("sequential", q.phases, q.up))
  if (p) console.log(describePhases("testbed", p.phases, p.up))
  const [low, high] = [Math.min(...loads), Math.max(...loads)]
  console.log(
    `1-minute load average ${low.toFixed(1)}-${high.toFixed(1)} over the rounds on ${cpus().length} cores${high > cpus().length ? " (loaded: the machine is shared)" : ""}`
  )
  if (!composeAvailable) return console.log("docker-compose not on PATH: compose comparison skipped")
  const viaCompose: Array<{ up: number; down: number }> = []
  const ourCompose: Array<{ up: number; down: number; phases: Phases }> = []
  for (let i = 0; i < rounds; i++) {
    viaCompose.push(yield* composeCycle.pipe(Effect.ensuring(Effect.ignore(Effect.try(() => dockerCompose(["down"]))))))
    ourCompose.push(yield* cycleOf(composeDir).pipe(Effect.provide(stagesWith(nodes, "compose"))))
  }
  console.log(row("docker-compose 1.x (compose form)", viaCompose))
  console.log(row("testbed (compose form)", ourCompose))
  const vs = (f: (x: { up: number; down: number }) => number) =>
    (median(viaCompose.map(f)) / median(ourCompose.map(f))).toFixed(2)
  console.log(
    `testbed vs docker-compose: up ${vs((x) => x.up)}x, down ${vs((x) => x.down)}x, up+down ${vs((x) => x.up + x.down)}x`
  )
}).pipe(Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true }))))

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
