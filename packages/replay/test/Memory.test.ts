// Memory stays bounded whatever the size of a blob or a session: `replay check`, the replay server and the record
// proxy each move 256 MiB in a process of their own (test/memory-probe.ts), whose peak RSS must grow by less than
// 150 MiB over its idle footprint. Holding the data would grow it by at least 256 MiB (the code before streaming
// grew it by 515-776 MiB); streaming grows it by 65-115 MiB whatever the size, V8 collecting the dead buffers of
// the streams in batches of about 64 MiB.
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { node, platform, tempDir } from "./support.ts"

const probe = Path.join(import.meta.dirname, "memory-probe.ts")
const mib = 256
const maxGrowthMiB = 150

interface Measured {
  readonly baselineMiB: number
  readonly peakMiB: number
  readonly bytes: number
}

const run = (args: ReadonlyArray<string>) =>
  Effect.callback<Measured>((resume) => {
    const child = ChildProcess.execFile(node, [probe, ...args], { maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) return resume(Effect.die(new Error(`memory-probe ${args.join(" ")}: ${error.message}\n${stderr}`)))
      const last = stdout.trim().split("\n").pop() ?? ""
      resume(Effect.try(() => JSON.parse(last) as Measured).pipe(Effect.orDie))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("bounded memory", () => {
  it.live(
    `check, serve and record move ${mib} MiB with peak RSS growing by less than ${maxGrowthMiB} MiB`,
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        yield* run(["prepare", dir, String(mib)])
        for (const args of [
          ["check", dir],
          ["serve", dir],
          ["record", dir, String(mib)]
        ]) {
          const measured = yield* run(args)
          const growth = measured.peakMiB - measured.baselineMiB
          console.log(
            `${args[0]}: ${mib} MiB through, peak RSS ${measured.peakMiB.toFixed(0)} MiB, +${growth.toFixed(0)} MiB`
          )
          assert.strictEqual(measured.bytes, mib * 1024 * 1024, args[0])
          assert.isBelow(growth, maxGrowthMiB, `${args[0]}: peak RSS grew by ${growth.toFixed(0)} MiB`)
        }
      }).pipe(Effect.provide(platform)),
    240_000
  )
})
