import { execFileSync, spawn } from "node:child_process"
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Schedule } from "effect"
import { Experiment } from "../src/index.ts"
import { fixtures, hasProgram, provide, readEvents, runFixture } from "./support.ts"

const fixture = (name: string) => decodeURIComponent(new URL(`./fixtures/${name}`, import.meta.url).pathname)

/** Every process: its pid, its parent's and its command line (from /proc). */
const processes = (): ReadonlyArray<{ readonly pid: number; readonly parent: number; readonly argv: Array<string> }> =>
  readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0")
        // The parent's pid is the 4th field of stat, after the command's name in parentheses.
        const stat = readFileSync(`/proc/${name}/stat`, "utf8")
        return [{ pid: Number(name), parent: Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]), argv }]
      } catch {
        return [] // ended meanwhile
      }
    })

/**
 * The tcpdump processes writing under `dir` (their command line names the file), with their parents' pids. Found in
 * /proc: tcpdump is a child of the spawn helper, not of the process that ran the experiment.
 */
const tcpdumpsUnder = (dir: string) =>
  processes()
    .filter(({ argv }) => argv[0]?.endsWith("tcpdump") && argv.some((arg) => arg.startsWith(dir)))
    .map(({ pid, parent }) => ({ pid, parent }))

const running = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
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
          assert.deepStrictEqual(tcpdumpsUnder(outcome.runDir), [])
        })
      ),
    30_000
  )
  it.live.skipIf(!hasProgram("tcpdump") && process.env.CI === undefined)(
    "tcpdump is started by the spawn helper, and a SIGKILLed run leaves no tcpdump running",
    () =>
      provide(
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-capture-kill-" })
          const file = join(dir, "held.yaml")
          writeFileSync(
            file,
            [
              "name: held capture",
              "test_timeout: 5 minutes",
              "tests:",
              "  - name: held",
              "    capture: true",
              "    services:",
              "      server: { implementation: node-echo, role: server }",
              '      client: { implementation: exec, role: client, parameters: { program: sleep, args: ["300"] } }',
              ""
            ].join("\n")
          )
          const out = join(dir, "out")
          const run = spawn(process.execPath, [fixture("capture-run.ts"), file, out], {
            stdio: ["ignore", "pipe", "pipe"]
          })
          let said = ""
          run.stdout.on("data", (chunk) => (said += String(chunk)))
          run.stderr.on("data", (chunk) => (said += String(chunk)))
          yield* Effect.addFinalizer(() => Effect.sync(() => run.exitCode === null && run.kill("SIGKILL")))
          // Generous: starting Node with the experiments library takes tens of seconds on a loaded 2-core machine.
          const captures = yield* Effect.sync(() => tcpdumpsUnder(out)).pipe(
            Effect.repeat({
              schedule: Schedule.spaced("100 millis"),
              until: (found) => found.length > 0 || run.exitCode !== null
            }),
            Effect.timeoutOption("90 seconds")
          )
          const found = captures._tag === "Some" ? captures.value : []
          assert.strictEqual(found.length, 1, `no capture running:\n${said}`)
          const { pid, parent: helper } = found[0]!
          // Forked by the spawn helper, not by the run's process.
          assert.notStrictEqual(helper, run.pid, "tcpdump's parent is the run's process")
          assert.isTrue(running(helper))
          // Whatever is left is killed by the test too, so a failing run of it leaks nothing: the groups the helper
          // started (each child leads one: tcpdump, the services), then the helper.
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              const groups = [pid, ...processes().flatMap((p) => (p.parent === helper ? [p.pid] : []))]
              for (const group of new Set(groups)) {
                try {
                  process.kill(-group, "SIGKILL")
                } catch {} // gone already
              }
              if (running(helper)) process.kill(helper, "SIGKILL")
            })
          )
          run.kill("SIGKILL")
          // tcpdump and the helper end (the helper once it has ended its children's groups).
          const alive = () => [pid, helper].filter(running)
          yield* Effect.sync(alive).pipe(
            Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (left) => left.length === 0 }),
            Effect.timeoutOption("20 seconds")
          )
          const survivors = alive()
          assert.deepStrictEqual(
            survivors,
            [],
            survivors.length === 0
              ? ""
              : execFileSync("ps", ["-o", "pid,ppid,etimes,cmd", "-p", survivors.join(",")], { encoding: "utf8" })
          )
          assert.deepStrictEqual(tcpdumpsUnder(out), [])
        })
      ),
    150_000
  )
})
