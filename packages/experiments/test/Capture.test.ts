import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Experiment } from "../src/index.ts"
import { fixtures, hasProgram, provide, readEvents, runFixture } from "./support.ts"

/** tcpdump processes this test process started and did not stop. */
const ownTcpdumps = (): ReadonlyArray<string> => {
  try {
    return execFileSync("pgrep", ["-P", String(process.pid), "-x", "tcpdump"], { encoding: "utf8" })
      .split("\n")
      .filter((line) => line !== "")
  } catch {
    return [] // pgrep exits 1 when nothing matches
  }
}

/** The TCP ports of every IPv4 packet of a classic pcap file (Ethernet link type, as on Linux loopback). */
const tcpPorts = (file: string): { readonly records: number; readonly ports: ReadonlyArray<number> } => {
  const data = readFileSync(file)
  assert.isAtLeast(data.length, 24, "pcap global header")
  const magic = data.readUInt32LE(0)
  assert.include([0xa1b2c3d4, 0xa1b23c4d], magic, `pcap magic number, got ${magic.toString(16)}`)
  assert.strictEqual(data.readUInt32LE(20), 1, "link type Ethernet")
  const ports: Array<number> = []
  let records = 0
  let offset = 24
  while (offset + 16 <= data.length) {
    const included = data.readUInt32LE(offset + 8)
    const packet = offset + 16
    records++
    // Ethernet (14 bytes), IPv4 with protocol TCP: the TCP header's ports follow the IP header.
    if (data.readUInt16BE(packet + 12) === 0x0800 && data[packet + 23] === 6) {
      const ip = packet + 14
      const tcp = ip + (data[ip]! & 0x0f) * 4
      ports.push(data.readUInt16BE(tcp), data.readUInt16BE(tcp + 2))
    }
    offset = packet + included
  }
  return { records, ports }
}

describe("packet capture", () => {
  it.effect("--dry-run checks the capture field", () =>
    provide(
      Effect.gen(function* () {
        const prepared = yield* Experiment.prepare(`${fixtures}capture.yaml`)
        assert.isTrue(prepared.plan.tests[0]?.capture)
        const error = yield* Effect.flip(Experiment.prepare(`${fixtures}cases/capture-invalid.yaml`))
        const paths = error.problems.map((problem) => problem.path)
        assert.include(paths, "capture")
        assert.include(paths, "tests[0].capture")
      })
    )
  )

  it.live("without tcpdump on PATH the test still runs, with a warning and no capture", () =>
    provide(
      Effect.gen(function* () {
        const path = process.env.PATH
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            process.env.PATH = "/nonexistent"
          }),
          () =>
            Effect.sync(() => {
              process.env.PATH = path
            })
        )
        const outcome = yield* runFixture("capture.yaml")
        const [test] = outcome.result!.tests
        assert.strictEqual(test?.status, "passed", test?.reason)
        const kinds = readEvents(outcome.runDir).flatMap((event) =>
          event.type === "test.artifact" ? [event.data.kind] : []
        )
        assert.include(kinds, "log")
        assert.notInclude(kinds, "capture")
      })
    )
  )

  // tcpdump missing: skipped locally, a failure in CI (CI=true), where the setup script installs it.
  it.live.skipIf(!hasProgram("tcpdump") && process.env.CI === undefined)(
    "records each server's traffic into <service>.pcap and reports it as a capture artifact",
    () =>
      provide(
        Effect.gen(function* () {
          const outcome = yield* runFixture("capture.yaml")
          const [test] = outcome.result!.tests
          assert.strictEqual(test?.status, "passed", test?.reason)
          const events = readEvents(outcome.runDir)
          const artifacts = events.flatMap((event) =>
            event.type === "test.artifact" && event.data.kind === "capture" ? [event.data] : []
          )
          assert.deepStrictEqual(
            artifacts.map((artifact) => [artifact.service, artifact.path]),
            [["server", "tests/echo-captured/attempt-1/server/server.pcap"]]
          )
          const port = events.flatMap((event) =>
            event.type === "service.state_changed" &&
            event.entityId === "echo captured/server" &&
            event.data.to === "DEPLOYED"
              ? [Number(event.data.metadata?.port)]
              : []
          )[0]
          assert.isDefined(port)
          const capture = tcpPorts(`${outcome.runDir}/${artifacts[0]!.path}`)
          assert.isAbove(capture.records, 0)
          assert.include(capture.ports, port)
          assert.deepStrictEqual(ownTcpdumps(), [])
        })
      ),
    30_000
  )
})
