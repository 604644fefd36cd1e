// Summarises a V8 .cpuprofile (from node --cpu-prof): the share of sampled time per function (self time), the
// biggest first, and the totals per category (GC, idle, the Effect runtime, node internals, this repository's code);
// then the inclusive time per function (its own and its callees', each sample counted once per function): where a
// path's cost lies when self time is spread over the runtime. FILTER keeps inclusive rows whose url or name contains it.
// FROM and TO (seconds since the profile began) keep the samples of a window (a run after the process started);
// `timeline` prints the busy milliseconds of every half second instead, to choose it.
//   node_modules/.bin/node bench/_profile-summary.ts FILE.cpuprofile [rows=25] [filter] [from] [to]
//   node_modules/.bin/node bench/_profile-summary.ts FILE.cpuprofile timeline
import { readFileSync } from "node:fs"

interface Node {
  readonly id: number
  readonly children?: ReadonlyArray<number>
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const [file = "", rowsText = "25", filter = "", fromText = "0", toText = "Infinity"] = process.argv.slice(2)
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

const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
const nameOf = (node: Node) => {
  const { functionName, url, lineNumber } = node.callFrame
  return `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${lineNumber + 1}`
}
const inclusive = new Map<string, number>()
const urls = new Map<string, string>()

const from = Number(fromText) * 1e6
const to = Number(toText) * 1e6
const busy = new Map<number, number>()
let at = 0

profile.samples.forEach((id, i) => {
  const node = byId.get(id)!
  const delta = profile.timeDeltas[i] ?? 0
  at += delta
  if (node.callFrame.functionName !== "(idle)") {
    busy.set(Math.floor(at / 5e5), (busy.get(Math.floor(at / 5e5)) ?? 0) + delta)
  }
  if (at < from || at > to) return
  const name = nameOf(node)
  self.set(name, (self.get(name) ?? 0) + delta)
  const seen = new Set<string>()
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = nameOf(byId.get(at)!)
    urls.set(frame, byId.get(at)!.callFrame.url)
    if (seen.has(frame)) continue
    seen.add(frame)
    inclusive.set(frame, (inclusive.get(frame) ?? 0) + delta)
  }
  categories.set(category(node), (categories.get(category(node)) ?? 0) + delta)
  total += delta
})

if (rowsText === "timeline") {
  console.log([...busy].map(([half, us]) => `${half / 2}s ${(us / 1000).toFixed(0)}`).join(", "))
  process.exit(0)
}
const percent = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`
console.log(`${(total / 1000).toFixed(0)} ms sampled`)
for (const [name, us] of [...categories].sort((a, b) => b[1] - a[1])) console.log(`${percent(us)}  ${name}`)
console.log("--- self time per function")
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(rowsText))) {
  console.log(`${percent(us)}  ${name}`)
}
console.log("--- inclusive time per function")
for (const [name, us] of [...inclusive]
  .filter(([name]) => `${urls.get(name)} ${name}`.includes(filter) && !name.startsWith("(root)"))
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(rowsText))) {
  console.log(`${percent(us)}  ${name}`)
}
