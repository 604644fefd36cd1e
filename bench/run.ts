// Runs every benchmark in bench/ one after another (each prints its own figures and ratios).
// Usage: node_modules/.bin/node bench/run.ts [name ...]   e.g. `bench/run.ts events commands`
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { fileURLToPath } from "node:url"

const dir = fileURLToPath(new URL(".", import.meta.url))
const wanted = process.argv.slice(2)
const benches = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts" && !f.startsWith("_"))
  .map((f) => f.slice(0, -3))
  .filter((name) => wanted.length === 0 || wanted.includes(name))

let failed = 0
for (const name of benches) {
  console.log(`\n=== bench/${name}.ts`)
  const result = spawnSync(process.execPath, [`${dir}${name}.ts`], { stdio: "inherit" })
  if (result.status !== 0) failed++
}
process.exit(failed === 0 ? 0 : 1)
