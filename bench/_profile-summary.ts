// Summarises a V8 .cpuprofile (from node --cpu-prof): the share of sampled time per function (self time), the
// biggest first, and the totals per category (GC, idle, the Effect runtime, node internals, this repository's code).
//   node_modules/.bin/node bench/_profile-summary.ts FILE.cpuprofile [rows=25]
import { readFileSync } from "node:fs"

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const [file = "", rowsText = "25"] = process.argv.slice(2)
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const self = new Map<string, number>()
const categories = new Map<string, number>()
let total = 0

const category = (node: Node): string => {
  const { functionName, url } = node.callFrame
  if (functionName === "(garbage collector)") return "garbage collection"
  if (functionName === "(idle)") return "idle (waiting for the socket)"
  if (functionName === "(program)") return "V8/native (program)"
  if (url.includes("/node_modules/effect/")) return "effect runtime"
  if (url.includes("/packages/")) return "testbed code"
  if (url.startsWith("node:")) return "node internals (net, streams, timers)"
  return url === "" ? "native (syscalls, libuv)" : "other"
}

profile.samples.forEach((id, i) => {
  const node = byId.get(id)!
  const delta = profile.timeDeltas[i] ?? 0
  const { functionName, url, lineNumber } = node.callFrame
  const name = `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${lineNumber + 1}`
  self.set(name, (self.get(name) ?? 0) + delta)
  categories.set(category(node), (categories.get(category(node)) ?? 0) + delta)
  total += delta
})

const percent = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`
console.log(`${(total / 1000).toFixed(0)} ms sampled`)
for (const [name, us] of [...categories].sort((a, b) => b[1] - a[1])) console.log(`${percent(us)}  ${name}`)
console.log("--- self time per function")
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(rowsText))) {
  console.log(`${percent(us)}  ${name}`)
}
