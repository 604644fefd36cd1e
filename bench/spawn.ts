// What a spawn costs the spawning process, directly (`child_process.spawn`: on Linux a fork of this process) against
// through the spawn helper (packages/commands/src/internal/SpawnHelper.ts: a small Node process forks instead, and
// hands back the pid, the pipes and the exit). In a process with a small heap and in one with a runner's (~220 MB,
// a little of it written all the time, as a runner does), `true` and `sleep 0.05` children, 4 at a time, stdout and
// stderr piped and read, each waited for until its pipes closed. Batches of each mode alternate (a full GC before
// each); per spawn: this process's CPU (user+system), the helper's CPU, minor page faults, and the event loop's
// delay (max and mean, monitorEventLoopDelay at 1 ms resolution) and the time `spawn()` itself blocks; and the wall
// time per spawn (4 at a time: the inverse of the throughput; noisy on a shared machine).
// Run: node_modules/.bin/node bench/spawn.ts [spawns per mode and program, default 200] [heap MB list, default 0,220;
// "220s" for a heap never written]
import { spawn } from "node:child_process"
import { loadavg } from "node:os"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import * as SpawnHelper from "../packages/commands/src/internal/SpawnHelper.ts"
import { cpuOf } from "./_proc-cpu.ts"

const spawns = Number(process.argv[2] ?? 200)
// "220s": the same heap, never written (no mutator): the fork's own cost, without the writes that follow it.
const heaps = (process.argv[3] ?? "0,220").split(",")
const parallel = 4
const batch = 20

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

interface Stats {
  wall: number
  cpu: number
  helperCpu: number
  faults: number
  blocked: number
  delayMax: number
  delayMean: number
  batches: number
  count: number
}
const empty = (): Stats => ({
  wall: 0,
  cpu: 0,
  helperCpu: 0,
  faults: 0,
  blocked: 0,
  delayMax: 0,
  delayMean: 0,
  batches: 0,
  count: 0
})

const direct = (program: string, args: Array<string>) =>
  new Promise<number>((resolve, reject) => {
    const before = performance.now()
    const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"], detached: true })
    const blocked = performance.now() - before
    child.stdout.on("data", () => {})
    child.stderr.on("data", () => {})
    child.on("error", reject)
    child.on("close", (code) => (code === 0 ? resolve(blocked) : reject(new Error(`exit ${code}`))))
  })

const viaHelper = (program: string, args: Array<string>) =>
  new Promise<number>((resolve, reject) => {
    const before = performance.now()
    const child = SpawnHelper.spawn({
      program,
      args,
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    })
    const blocked = performance.now() - before
    if (child === undefined) return reject(new Error("no helper"))
    child.on("spawn", () => {
      child.stdout?.on("data", () => {})
      child.stderr?.on("data", () => {})
    })
    child.on("error", reject)
    child.on("close", (code: number | null) => (code === 0 ? resolve(blocked) : reject(new Error(`exit ${code}`))))
  })

const runBatch = async (mode: "direct" | "helper", program: string, args: Array<string>, stats: Stats) => {
  gc()
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  const helperBefore = cpuOf(SpawnHelper.pid())
  const cpuBefore = process.cpuUsage()
  const faultsBefore = process.resourceUsage().minorPageFault
  histogram.enable()
  const began = performance.now()
  let next = 0
  let blocked = 0
  const worker = async () => {
    while (next < batch) {
      next++
      blocked += await (mode === "direct" ? direct(program, args) : viaHelper(program, args))
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  histogram.disable()
  stats.wall += performance.now() - began
  const cpu = process.cpuUsage(cpuBefore)
  stats.cpu += (cpu.user + cpu.system) / 1000
  stats.faults += process.resourceUsage().minorPageFault - faultsBefore
  stats.helperCpu += cpuOf(SpawnHelper.pid()) - helperBefore
  stats.blocked += blocked
  stats.delayMax = Math.max(stats.delayMax, histogram.max / 1e6)
  stats.delayMean += histogram.mean / 1e6
  stats.batches++
  stats.count += batch
}

// A runner's heap: small objects in old space, a few of them rewritten every few ms (as a runner's work does).
const ballast: Array<{ n: number; s: string }> = []
let mutator: ReturnType<typeof setInterval> | undefined
const grow = (megabytes: number, mutate: boolean) => {
  const perMb = 12_000
  for (let i = 0; i < megabytes * perMb; i++) ballast.push({ n: i, s: `entry ${i}` })
  if (megabytes > 0 && mutate) {
    mutator = setInterval(() => {
      for (let i = 0; i < 2000; i++) {
        const entry = ballast[Math.floor(Math.random() * ballast.length)]!
        entry.n++
      }
    }, 5)
  }
}

const fmt = (value: number, digits = 2) => value.toFixed(digits)

const measure = async (heap: string) => {
  const heapMb = Number.parseInt(heap, 10)
  const mutate = !heap.endsWith("s")
  grow(heapMb, mutate)
  gc()
  SpawnHelper.start()
  // Warm both paths up.
  for (let i = 0; i < 10; i++) {
    await direct("true", [])
    await viaHelper("true", [])
  }
  const rss = process.memoryUsage().rss / 1e6
  const load = loadavg()[0]!
  const programs: Array<[string, Array<string>]> = [
    ["true", []],
    ["sleep", ["0.05"]]
  ]
  for (const [program, args] of programs) {
    const stats = { direct: empty(), helper: empty() }
    for (let round = 0; stats.direct.count < spawns; round++) {
      const order: Array<"direct" | "helper"> = round % 2 === 0 ? ["direct", "helper"] : ["helper", "direct"]
      for (const mode of order) await runBatch(mode, program, args, stats[mode])
    }
    const line = (mode: "direct" | "helper") => {
      const s = stats[mode]
      return `${mode.padEnd(6)} wall ${fmt(s.wall / s.count)} ms, parent ${fmt(s.cpu / s.count)} ms + helper ${fmt(s.helperCpu / s.count)} ms CPU, ${fmt(s.faults / s.count, 0)} faults, spawn() blocks ${fmt(s.blocked / s.count)} ms, loop delay max ${fmt(s.delayMax, 1)} / mean ${fmt(s.delayMean / s.batches)} ms`
    }
    const d = stats.direct
    const h = stats.helper
    console.log(
      `heap ${heapMb} MB${heapMb > 0 && !mutate ? " (never written)" : ""} (RSS ${fmt(rss, 0)} MB, load ${fmt(load)}), ${spawns} × ${[program, ...args].join(" ")}, ${parallel} at a time`
    )
    console.log(`  ${line("direct")}`)
    console.log(`  ${line("helper")}`)
    console.log(
      `  helper/direct: wall ${fmt(h.wall / d.wall)}×, parent CPU ${fmt(h.cpu / d.cpu)}×, parent+helper CPU ${fmt((h.cpu + h.helperCpu) / d.cpu)}×, faults ${fmt(h.faults / d.faults)}×, loop delay mean ${fmt(h.delayMean / d.delayMean)}×, max ${fmt(h.delayMax / d.delayMax)}×`
    )
  }
  if (mutator !== undefined) clearInterval(mutator)
}

if (process.argv[4] === "--one") {
  await measure(heaps[0]!)
  process.exit(0)
} else {
  // Each heap size in a process of its own (this script again), one after the other.
  for (const heap of heaps) {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [process.argv[1]!, String(spawns), heap, "--one"], {
        stdio: "inherit"
      })
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))))
    })
  }
}
