// The measurement probe's listening modes bind port 0 and say which port they got, so two verifications (or a lab's
// own service) never collide on a guessed port. Run here on loopback, outside any namespace.
import { spawn } from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Probe from "../src/internal/probe.ts"

/** Starts the probe in `mode`; its first JSON line (the probe is killed when the test's scope closes). */
const firstLine = (mode: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, ["-e", Probe.script, "--", mode, ...args], { stdio: ["ignore", "pipe", "inherit"] })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  ).pipe(
    Effect.flatMap((child) =>
      Effect.callback<string>((resume) => {
        let out = ""
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString()
          const end = out.indexOf("\n")
          if (end >= 0) resume(Effect.succeed(out.slice(0, end)))
        })
      })
    ),
    Effect.timeout("30 seconds")
  )

const decodeReady = Schema.decodeUnknownSync(Schema.fromJsonString(Probe.Ready))

describe("measurement probes", () => {
  it.live("listening probes bind a free port and report it; the sender reaches it there", () =>
    Effect.scoped(
      Effect.gen(function* () {
        for (const mode of ["tcp-sink", "udp-count", "udp-echo"]) {
          const ready = decodeReady(yield* firstLine(mode, ["127.0.0.1", "0", "20"]))
          assert.isAbove(ready.port, 0, mode)
        }
        const sink = decodeReady(yield* firstLine("tcp-sink", ["127.0.0.1", "0", "20"]))
        const sent = JSON.parse(yield* firstLine("tcp-send", ["127.0.0.1", String(sink.port), "0.2"]))
        assert.isAbove(sent.sent, 0)
      })
    )
  )
})
