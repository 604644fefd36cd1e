// The raw baseline of bench/commands.ts and bench/_commands-profile.ts: `true` through node:child_process, its
// stdout/stderr piped and read, waiting for "close" (`detached`: its own process group, as LocalRunner must).
import { spawn } from "node:child_process"

export const rawOnce = (detached: boolean) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn("true", [], { stdio: ["ignore", "pipe", "pipe"], detached })
    child.stdout.on("data", () => {})
    child.stderr.on("data", () => {})
    child.on("error", reject)
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))))
  })
