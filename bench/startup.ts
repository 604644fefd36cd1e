// Startup time of the built CLI (apps/testbed/dist/bin.js, as installed from the registry): median wall time of
// `--version`, `run --help` and `run --dry-run` of the quickstart, each against a bare `node -e 0` measured in
// the same run, the commands interleaved so load on the machine hits all of them alike. Aims: --version within 5×
// bare Node, --dry-run within 10×. Node's compile cache (enabled by bin.js) is warmed first; the same figures
// without it (NODE_DISABLE_COMPILE_CACHE=1) show what a first run after an install costs.
// In the workspace, dist/bin.js loads the libraries from their TypeScript sources (the packages' development
// exports); `--bin PATH` measures an installed CLI instead (e.g. `$(npm root -g)/@testbed/cli/dist/bin.js`),
// whose libraries are their published JavaScript.
//   pnpm build && node_modules/.bin/node bench/startup.ts [--runs N] [--bin PATH]
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("..", import.meta.url))
const option = (name: string): string | undefined => {
  const index = process.argv.indexOf(name)
  return index >= 0 ? process.argv[index + 1] : undefined
}
const bin = option("--bin") ?? `${repo}apps/testbed/dist/bin.js`
const quickstart = `${repo}fixtures/experiments/quickstart.yaml`
const runs = Number(option("--runs") ?? 21)

if (!existsSync(bin)) {
  console.error(`${bin} is missing: run \`pnpm build\` first`)
  process.exit(1)
}

interface Case {
  readonly name: string
  readonly args: ReadonlyArray<string>
  readonly aim?: number
}

const cases: ReadonlyArray<Case> = [
  { name: "node -e 0", args: ["-e", "0"] },
  { name: "testbed --version", args: [bin, "--version"], aim: 5 },
  { name: "testbed run --help", args: [bin, "run", "--help"] },
  { name: "testbed run --dry-run quickstart", args: [bin, "run", "--dry-run", quickstart], aim: 10 }
]

const time = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): number => {
  const started = performance.now()
  const result = spawnSync(process.execPath, [...args], { env, stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 })
  const elapsed = performance.now() - started
  if (result.status !== 0) throw new Error(`${args.join(" ")} exited ${result.status}: ${result.stderr}`)
  return elapsed
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

const measure = (label: string, env: NodeJS.ProcessEnv) => {
  for (const { args } of cases) time(args, env) // warm the page cache and, when enabled, the compile cache
  const samples = new Map(cases.map(({ name }) => [name, [] as Array<number>]))
  for (let round = 0; round < runs; round++)
    for (const { name, args } of cases) samples.get(name)?.push(time(args, env))
  const baseline = median(samples.get("node -e 0") ?? [])
  console.log(`\n${label} — median of ${runs} runs each, interleaved`)
  console.log(`${"command".padEnd(34)} ${"median".padStart(9)} ${"ratio".padStart(7)}  aim`)
  for (const { name, aim } of cases) {
    const value = median(samples.get(name) ?? [])
    const ratio = value / baseline
    const verdict = aim === undefined ? "" : `≤ ${aim}× ${ratio <= aim ? "met" : "missed"}`
    console.log(
      `${name.padEnd(34)} ${`${value.toFixed(0)} ms`.padStart(9)} ${`${ratio.toFixed(2)}×`.padStart(7)}  ${verdict}`
    )
  }
}

console.log(`startup of ${bin} on Node ${process.version}`)
const { NODE_DISABLE_COMPILE_CACHE: _ignored, ...env } = process.env
measure("compile cache warm (every run after the first)", env)
measure("compile cache off (NODE_DISABLE_COMPILE_CACHE=1)", { ...env, NODE_DISABLE_COMPILE_CACHE: "1" })
