// The real `testbed run` as a child process (moved here from @testbed/experiments: it tests the app): its exit codes, SIGINT in the middle of a run (no process is left
// behind and the reports of what ran are still written), SIGKILL (the watchdog ends what the run started), a full
// disk (exit 3, the file and ENOSPC named, nothing half-written), and bad input that must never show a stack trace.
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { readEvents } from "./support.ts"

const repo = decodeURIComponent(new URL("../../../", import.meta.url).pathname)
const fixtures = `${repo}fixtures/experiments/`

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const exitOf = (child: ChildProcess) =>
  Effect.callback<{ readonly code: number | null; readonly signal: string | null }>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resume(Effect.succeed({ code: child.exitCode, signal: child.signalCode }))
      return
    }
    child.once("exit", (code, signal) => resume(Effect.succeed({ code, signal })))
  })

const countLines = (file: string, type: string) =>
  existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => line.includes(`"type":"${type}"`)).length
    : 0

const cli = (...args: ReadonlyArray<string>) =>
  spawnSync(process.execPath, [`${repo}apps/testbed/src/bin.ts`, ...args], {
    cwd: repo,
    encoding: "utf8",
    timeout: 60_000
  })

/** A stack trace line (`    at f (file:1:2)`): never printed for an expected error. */
const stackTrace = /^\s+at .+:\d+:\d+\)?$/m

/** Whether a tmpfs can be mounted here (root on Linux); under CI a test that needs one runs and fails without it. */
const canMount = process.getuid?.() === 0 && process.platform === "linux"

/** A 64 KiB tmpfs mounted for the test's scope: a disk that is full after a few dozen events. */
const tinyDisk = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = mkdtempSync(join(tmpdir(), "testbed-full-"))
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { encoding: "utf8" })
    return { dir, mounted: mounted.status === 0, error: mounted.stderr }
  }),
  ({ dir, mounted }) =>
    Effect.sync(() => {
      if (mounted) spawnSync("umount", ["-l", dir])
      rmSync(dir, { recursive: true, force: true })
    })
)

/** `/proc/<pid>/cmdline` as one string, or undefined when the process is gone. */
const commandLine = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")
  } catch {
    return undefined
  }
}

/** `/proc/<pid>/stat` fields after the command name: [state, ppid, pgrp, …]; undefined when gone. */
const stat = (pid: number) => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    return text.slice(text.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/** Still running: a zombie (dead, waiting to be reaped by a slow init) does not count. */
const running = (pid: number) => {
  const fields = stat(pid)
  return fields !== undefined && fields[0] !== "Z"
}

/** Running (non-zombie) pids whose command line mentions `marker`, and the members of their process groups. */
const processesOf = (marker: string): ReadonlyArray<number> => {
  const all = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
  const marked = all.filter((pid) => commandLine(pid)?.includes(marker) === true)
  const groups = new Set(marked.map((pid) => stat(pid)?.[2]))
  return all.filter((pid) => {
    const fields = stat(pid)
    return fields !== undefined && fields[0] !== "Z" && groups.has(fields[2])
  })
}

/** Whether anything listens on TCP `port` here (the kernel's socket table). */
const listeningOn = (port: number) =>
  ["/proc/net/tcp", "/proc/net/tcp6"].some((table) =>
    readFileSync(table, "utf8")
      .split("\n")
      .some((line) => {
        const fields = line.trim().split(/\s+/)
        return fields[3] === "0A" && fields[1]?.endsWith(`:${port.toString(16).toUpperCase().padStart(4, "0")}`)
      })
  )

describe("testbed run (the CLI)", () => {
  it("--dry-run exits 0 for a good file and lists its tests; 2 with every problem of a bad one", () => {
    const good = cli("run", `${fixtures}tls-interop.yaml`, "--dry-run")
    assert.strictEqual(good.status, 0, good.stderr)
    assert.include(good.stdout, `OK — experiment "tls-interop", 4 test(s)`)
    const bad = cli("run", `${fixtures}cases/invalid.yaml`, "--dry-run")
    assert.strictEqual(bad.status, 2)
    assert.include(bad.stderr, "10 problem(s)")
    assert.include(bad.stderr, "tests[0].services.client.parameters.count: expected an integer")
    assert.notInclude(bad.stderr, "ExitWith")
  }, 240_000)

  it("exits 1 when a test fails and points at the HTML report", () => {
    const output = mkdtempSync(join(tmpdir(), "testbed-cli-"))
    const run = cli("run", `${fixtures}cases/fast-fail.yaml`, "--output-dir", output, "--plain")
    rmSync(output, { recursive: true, force: true })
    assert.strictEqual(run.status, 1, run.stderr)
    assert.match(run.stdout, /HTML report: .*\/fast-fail-\d{8}-\d{6}\/report\.html/)
  }, 120_000)

  it.live(
    "SIGINT mid-run leaves no process and still writes the reports of what ran",
    () =>
      Effect.gen(function* () {
        const output = mkdtempSync(join(tmpdir(), "testbed-interrupt-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(output, { recursive: true, force: true })))
        const child = spawn(
          process.execPath,
          [
            `${repo}apps/testbed/src/bin.ts`,
            "run",
            `${fixtures}cases/interrupt.yaml`,
            "--output-dir",
            output,
            "--plain"
          ],
          { cwd: repo, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "true" } }
        )
        let stdout = ""
        child.stdout?.on("data", (chunk) => (stdout += String(chunk)))
        child.stderr?.on("data", (chunk) => (stdout += String(chunk)))
        yield* Effect.addFinalizer(() => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")))

        // Wait until the three long-running services (a server and two clients) are up.
        const runDir = yield* Effect.sync(() => {
          const dirs = existsSync(output) ? readdirSync(output) : []
          const dir = dirs.length === 1 ? join(output, dirs[0]!) : undefined
          return dir !== undefined && countLines(join(dir, "events.jsonl"), "service.started") >= 3 ? dir : undefined
        }).pipe(
          Effect.repeat({
            schedule: Schedule.spaced("50 millis"),
            until: (dir) => dir !== undefined || child.exitCode !== null
          }),
          Effect.timeout("60 seconds")
        )
        assert.isDefined(runDir, `the run never got going:\n${stdout}`)
        const pids = readEvents(runDir!).flatMap((e) =>
          e.type === "service.started" && e.data.pid !== undefined ? [e.data.pid] : []
        )
        assert.strictEqual(pids.length, 3)
        for (const pid of pids) assert.isTrue(alive(pid))

        child.kill("SIGINT")
        const exit = yield* Effect.timeout(exitOf(child), "30 seconds")
        assert.strictEqual(exit.code, 130, stdout)

        for (const pid of pids) assert.isFalse(alive(pid), `process ${pid} outlived the run`)
        const events = readEvents(runDir!)
        const finished = events.find((e) => e.type === "experiment.finished")
        assert.strictEqual(finished?.type === "experiment.finished" ? finished.data.status : undefined, "interrupted")
        const statuses = Object.fromEntries(
          events.flatMap((e) => (e.type === "test.finished" ? [[e.data.name, e.data.status]] : []))
        )
        assert.deepStrictEqual(statuses, {
          "long client": "interrupted",
          "another long client": "interrupted",
          "queued behind them": "skipped"
        })
        assert.strictEqual(events.filter((e) => e.type === "service.exited").length, 3)
        const summary = JSON.parse(readFileSync(join(runDir!, "experiment_summary.json"), "utf8"))
        assert.strictEqual(summary.tests.total, 3)
        assert.isTrue(existsSync(join(runDir!, "report.html")))
      }).pipe(Effect.scoped),
    150_000
  )

  it.live(
    "SIGKILL mid-run: the watchdog ends the services and the step it started; nothing listens any more",
    () =>
      Effect.gen(function* () {
        const output = mkdtempSync(join(tmpdir(), "testbed-sigkill-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(output, { recursive: true, force: true })))
        const child = spawn(
          process.execPath,
          [`${repo}apps/testbed/src/bin.ts`, "run", `${fixtures}cases/sigkill.yaml`, "--output-dir", output, "--plain"],
          { cwd: repo, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "true" } }
        )
        let said = ""
        child.stdout?.on("data", (chunk) => (said += String(chunk)))
        child.stderr?.on("data", (chunk) => (said += String(chunk)))
        yield* Effect.addFinalizer(() => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")))

        // Running: the server listening, the client and the step's shell with its two sleeps.
        const runDir = yield* Effect.sync(() => {
          const dirs = existsSync(output) ? readdirSync(output) : []
          const dir = dirs.length === 1 ? join(output, dirs[0]!) : undefined
          const log = dir === undefined ? "" : join(dir, "events.jsonl")
          return dir !== undefined &&
            countLines(log, "service.started") >= 2 &&
            countLines(log, "command.started") >= 1 &&
            processesOf(dir).length >= 4
            ? dir
            : undefined
        }).pipe(
          Effect.repeat({
            schedule: Schedule.spaced("100 millis"),
            until: (dir) => dir !== undefined || child.exitCode !== null
          }),
          Effect.timeout("60 seconds")
        )
        assert.isDefined(runDir, `the run never got going:\n${said}`)
        const events = readEvents(runDir!)
        const servicePids = events.flatMap((e) =>
          e.type === "service.started" && e.data.pid !== undefined ? [e.data.pid] : []
        )
        const port = events.flatMap((e) =>
          e.type === "service.state_changed" && e.data.to === "DEPLOYED" && typeof e.data.metadata?.port === "number"
            ? [e.data.metadata.port]
            : []
        )[0]
        assert.isDefined(port)
        assert.isTrue(listeningOn(port!))
        const before = [...new Set([...servicePids, ...processesOf(runDir!)])]
        // Whatever the test finds left is killed by it too, so a failing run of this test leaks nothing.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of before) if (running(pid)) process.kill(pid, "SIGKILL")
          })
        )

        child.kill("SIGKILL")
        yield* Effect.timeout(exitOf(child), "30 seconds")
        const left = yield* Effect.sync(() => ({
          processes: [...new Set([...processesOf(runDir!), ...servicePids.filter(running)])],
          listening: listeningOn(port!)
        })).pipe(
          Effect.repeat({
            schedule: Schedule.spaced("100 millis"),
            until: (state) => state.processes.length === 0 && !state.listening
          }),
          Effect.timeoutOption("20 seconds")
        )
        assert.isTrue(
          left._tag === "Some",
          `20 s after the SIGKILL: running ${JSON.stringify(before.filter(running))}, port ${port} listening: ${listeningOn(port!)}`
        )
      }).pipe(Effect.scoped),
    120_000
  )

  it.live.skipIf(!canMount && process.env.CI === undefined)(
    "a full disk stops the run: exit 3, the file and ENOSPC named, the log ends at a whole line, no stray files",
    () =>
      Effect.gen(function* () {
        const disk = yield* tinyDisk
        assert.isTrue(disk.mounted, `cannot mount a tmpfs for the test: ${disk.error}`)
        const run = cli("run", `${fixtures}quickstart.yaml`, "--output-dir", disk.dir, "--plain")
        assert.strictEqual(run.status, 3, `${run.stdout}\n${run.stderr}`)
        assert.match(run.stderr, /testbed: cannot write .*\/events\.jsonl: no space left on device \(ENOSPC\)/)
        assert.notMatch(run.stdout, stackTrace)
        assert.notMatch(run.stderr, stackTrace)
        const [runDir] = readdirSync(disk.dir)
        const files = spawnSync("find", [join(disk.dir, runDir!), "-type", "f"], { encoding: "utf8" }).stdout
        assert.notMatch(files, /\.tmp/, files)
        const log = readFileSync(join(disk.dir, runDir!, "events.jsonl"), "utf8")
        assert.isTrue(log.endsWith("\n"), "the event log ends with a whole line")
        for (const line of log.split("\n").filter((l) => l !== "")) JSON.parse(line)
      }).pipe(Effect.scoped),
    120_000
  )

  it("bad input gives a clear error and its exit code, never a stack trace", () => {
    const dir = mkdtempSync(join(tmpdir(), "testbed-badinput-"))
    try {
      // A billion laughs: exit 2 with the problem, not a stack trace.
      const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
      for (const [from, to] of ["ab", "bc", "cd", "de", "ef", "fg"])
        levels.push(`${to}: &${to} [${Array(9).fill(`*${from}`).join(", ")}]`)
      writeFileSync(join(dir, "laughs.yaml"), [...levels, "tests: [*g]"].join("\n"))
      const laughs = cli("run", join(dir, "laughs.yaml"), "--dry-run")
      assert.strictEqual(laughs.status, 2, laughs.stdout + laughs.stderr)
      assert.include(laughs.stderr, "aliases expand too far")
      // An output directory under /proc (where recursive mkdir loops forever) or under a file: exit 2.
      for (const outputDir of ["/proc/testbed-nowhere", "/dev/null/x"]) {
        const run = cli("run", `${fixtures}quickstart.yaml`, "--output-dir", outputDir, "--plain")
        assert.strictEqual(run.status, 2, run.stdout + run.stderr)
        assert.match(run.stderr, /testbed: output directory .*: cannot create it: /)
      }
      // Reports of a directory without a run.
      const report = cli("report", dir)
      assert.notStrictEqual(report.status, 0)
      assert.match(report.stderr, /^testbed: .*events\.jsonl/m)
      // Names with escape sequences: refused, and no raw escape byte reaches the terminal.
      const names = cli("run", `${fixtures}cases/escaping-names.yaml`, "--dry-run")
      assert.strictEqual(names.status, 2)
      assert.include(names.stderr, "contains control characters")
      for (const result of [laughs, report, names]) {
        assert.notMatch(result.stdout, stackTrace)
        assert.notMatch(result.stderr, stackTrace)
        assert.notInclude(result.stdout + result.stderr, "\u001b")
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
