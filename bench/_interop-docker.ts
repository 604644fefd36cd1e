// The docker half of bench/interop.ts (`--docker`): the TLS matrix subset of fixtures/experiments/tls-matrix-docker.yaml
// (OpenSSL × GnuTLS × 3 cases = 12 cells). Image build time from an empty cache and cached (DockerImages.ensure
// under throwaway names, removed after), then the subset run by the CLI in the docker environment and, as the
// baseline in the same run, the same cells on localhost: wall time and time per cell.
import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { NodeServices } from "@effect/platform-node"
import { Docker } from "../packages/stages/src/index.ts"
import { Effect } from "effect"
import OpenSsl from "../packages/plugins/src/tls/OpenSsl.ts"
import GnuTls from "../packages/plugins/src/tls/GnuTls.ts"
import * as DockerImages from "../packages/experiments/src/DockerImages.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const work = mkdtempSync(join(tmpdir(), "testbed-bench-interop-docker-"))
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")

// Image builds: a throwaway implementation name is an empty cache for that image; the second ensure is the cache hit.
const images: Array<string> = []
const timeImage = (plugin: typeof OpenSsl) =>
  Effect.gen(function* () {
    const name = `bench-${plugin.name}-${randomBytes(3).toString("hex")}`
    const first = yield* DockerImages.ensure(name, plugin.docker!.rootfs!)
    images.push(first.image)
    const second = yield* DockerImages.ensure(name, plugin.docker!.rootfs!)
    return { name: plugin.name, empty: first, cached: second }
  })
const builds = await Effect.runPromise(
  Effect.all([timeImage(OpenSsl), timeImage(GnuTls)]).pipe(
    Effect.provide(Docker.Docker.layer),
    Effect.provide(NodeServices.layer)
  )
)
for (const image of images) execFileSync("docker", ["image", "rm", "--force", image], { stdio: "ignore" })
for (const b of builds) {
  console.log(
    `image ${b.name}: empty cache ${seconds(b.empty.durationMs)} (built: ${b.empty.built}), cached ${seconds(b.cached.durationMs)} (built: ${b.cached.built}), ${(b.empty.durationMs / b.cached.durationMs).toFixed(1)}× — load ${load()}`
  )
}

interface Summary {
  readonly tests: { readonly total: number; readonly results: ReadonlyArray<{ status: string; duration: number }> }
}

const run = (environment: string, concurrency: number) => {
  const file = join(work, `matrix-${environment}.yaml`)
  const text = readFileSync(`${root}fixtures/experiments/tls-matrix-docker.yaml`, "utf8")
  writeFileSync(file, text.replace(/^environment: docker$/m, `environment: ${environment}`))
  const output = join(work, `${environment}-c${concurrency}`)
  const started = performance.now()
  spawnSync(
    process.execPath,
    [`${root}scripts/testbed.ts`, "run", file, "--plain", "--concurrency", String(concurrency), "--output-dir", output],
    { stdio: ["ignore", "ignore", "inherit"] }
  )
  const wall = performance.now() - started
  const [runDir] = readdirSync(output)
  const summary = JSON.parse(readFileSync(join(output, runDir!, "experiment_summary.json"), "utf8")) as Summary
  const busy = summary.tests.results.reduce((sum, test) => sum + test.duration, 0)
  const counts = new Map<string, number>()
  for (const test of summary.tests.results) counts.set(test.status, (counts.get(test.status) ?? 0) + 1)
  const verdicts = [...counts.entries()].map(([status, n]) => `${n} ${status}`).join(", ")
  return { environment, concurrency, wall, cells: summary.tests.total, busy, verdicts }
}

const runs = [run("localhost", 2), run("docker", 1), run("docker", 2)]
const baseline = runs[0]!
for (const r of runs) {
  console.log(
    `${r.environment} concurrency ${r.concurrency}: ${r.cells} cells in ${seconds(r.wall)} wall, ` +
      `${(r.wall / r.cells / 1000).toFixed(2)} s per cell (wall), ${(r.busy / r.cells).toFixed(2)} s per cell (its own duration), ` +
      `${(r.busy / r.cells / (baseline.busy / baseline.cells)).toFixed(1)}× localhost's per cell — ${r.verdicts} — load ${load()}`
  )
}
rmSync(work, { recursive: true, force: true })
