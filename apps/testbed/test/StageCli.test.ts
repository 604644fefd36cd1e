// The `testbed stage` commands as a user runs them: a real process, a real terminal for `connect` (driven
// through a pseudo-terminal by python3's pty module), Ctrl-C in the middle of `up`, exit codes.
import { assert, describe, it } from "@effect/vitest"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { StageState } from "@testbed/stages"
import { Effect, Schedule } from "effect"
// The stages package's Docker test support: engine detection (a failure under CI=true), sandboxed fixture stages.
import {
  ci,
  engineAvailable,
  fixtures,
  labelledContainers,
  labelledNetworks,
  repo,
  sandbox
} from "../../../packages/stages/test/support.ts"
import { bin } from "./support.ts"

// The real Node 24 binary: node_modules/.bin/node is a shell wrapper that would not pass SIGINT on.
const node = join(repo, "node_modules", "node", "bin", "node")

const python = spawnSync("python3", ["-c", "import pty"]).status === 0
if (ci && !python) throw new Error("CI=true but python3 (for the pseudo-terminal) is missing")

const cli = (args: ReadonlyArray<string>, options: { readonly cwd: string }) =>
  spawnSync(node, [bin, "stage", ...args], { cwd: options.cwd, encoding: "utf8", timeout: 200_000 })

// Opens a pty, runs the command in it, types a line once the shell prompt shows, reads until the marker,
// then types `exit 7`; prints a JSON line with what it saw and the exit code.
const ptyDriver = String.raw`
import json, os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
def read_until(token, timeout):
    global seen
    end = time.time() + timeout
    while token not in seen and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            seen += data
    return token in seen
prompt = read_until(b"# ", 150)
os.write(fd, b"tty; echo marker-$((40+2))\n")
found = read_until(b"marker-42", 30)
os.write(fd, b"exit 7\n")
_, status = os.waitpid(pid, 0)
print(json.dumps({"prompt": prompt, "found": found, "code": os.waitstatus_to_exitcode(status), "seen": seen.decode("utf8", "replace")}))
`

describe.skipIf(!engineAvailable)("testbed stage (CLI, real Docker)", () => {
  it.live(
    "up, exec with its exit code, connect through a terminal, status, down",
    () => {
      const box = sandbox(["routing-lab"])
      return Effect.gen(function* () {
        const up = cli(["up", "routing-lab"], { cwd: box.dir })
        assert.strictEqual(up.status, 0, up.stderr)
        assert.include(up.stdout, "stage routing-lab is up")

        const exec = cli(["exec", "client1", "--", "sh", "-c", "echo from-$(hostname); exit 3"], { cwd: box.dir })
        assert.strictEqual(exec.status, 3, exec.stderr)
        assert.strictEqual(exec.stdout, "from-client1\n")

        const session = spawnSync("python3", ["-c", ptyDriver, node, bin, "stage", "connect", "client1"], {
          cwd: box.dir,
          encoding: "utf8",
          timeout: 200_000
        })
        const seen = JSON.parse(session.stdout.trim().split("\n").at(-1) ?? "{}")
        assert.isTrue(seen.found, seen.seen)
        assert.include(seen.seen, "/dev/pts/")
        assert.strictEqual(seen.code, 7)

        // Without a terminal: the shell reads its commands from the pipe, its output comes back, and it says so.
        const piped = spawnSync(node, [bin, "stage", "connect", "client1"], {
          cwd: box.dir,
          encoding: "utf8",
          timeout: 60_000,
          input: "echo from-$(hostname)\necho oops >&2\nexit 4\n"
        })
        assert.strictEqual(piped.status, 4, piped.stderr)
        assert.strictEqual(piped.stdout, "from-client1\n")
        assert.include(piped.stderr, "oops")
        assert.include(piped.stderr, "stdin is not a terminal")
        const nothing = spawnSync(node, [bin, "stage", "connect", "client1"], {
          cwd: box.dir,
          encoding: "utf8",
          timeout: 60_000,
          stdio: ["ignore", "pipe", "pipe"]
        })
        assert.strictEqual(nothing.status, 0, nothing.stderr)
        assert.include(nothing.stderr, "stdin is not a terminal")

        const down = cli(["down"], { cwd: box.dir })
        assert.strictEqual(down.status, 0, down.stderr)
        assert.strictEqual(down.stdout.trim(), "stage routing-lab is down")
        assert.isFalse(existsSync(join(box.stateDir, "stage.json")))
      }).pipe(
        Effect.onError(() => Effect.sync(() => cli(["prune"], { cwd: box.dir }))),
        Effect.ensuring(Effect.sync(() => box.cleanup()))
      )
    },
    300_000
  )

  it.live(
    "Ctrl-C in the middle of up removes everything that up created",
    () => {
      const box = sandbox(["routing-lab"], (text) =>
        text.replaceAll(
          "[{ command: [test, -d, /root/src], timeout: 20 seconds }]",
          `[{ command: ["false"], timeout: 10 minutes }]`
        )
      )
      const namespace = StageState.namespaceOf(box.stateDir)
      const labelled = () => Effect.all([labelledContainers(namespace), labelledNetworks(namespace)])
      let child: ChildProcess | undefined
      return Effect.gen(function* () {
        const proc = spawn(node, [bin, "stage", "up", "routing-lab"], {
          cwd: box.dir,
          stdio: ["ignore", "ignore", "pipe"]
        })
        child = proc
        let stderr = ""
        proc.stderr?.on("data", (chunk: Buffer) => {
          stderr += chunk.toString("utf8")
        })
        const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)))
        yield* labelled().pipe(
          Effect.filterOrFail(([cs]) => cs.length === 2 && cs.every((c) => c.State === "running")),
          Effect.retry(Schedule.spaced("200 millis")),
          Effect.timeout("120 seconds")
        )
        proc.kill("SIGINT")
        const code = yield* Effect.promise(() => exited).pipe(Effect.timeout("90 seconds"))
        assert.strictEqual(code, 130)
        assert.include(stderr, "up interrupted: removed 2 containers and 2 networks; nothing of it is left")
        const [containers, networks] = yield* labelled()
        assert.deepStrictEqual([containers.length, networks.length], [0, 0])
        assert.isFalse(existsSync(join(box.stateDir, "stage.json")))
      }).pipe(
        Effect.onError(() =>
          Effect.sync(() => {
            child?.kill("SIGKILL")
            cli(["prune"], { cwd: box.dir })
          })
        ),
        Effect.ensuring(Effect.sync(() => box.cleanup()))
      )
    },
    300_000
  )

  it.live(
    "a bad definition exits 2 naming the YAML path; a name with .. is refused",
    () => {
      const box = sandbox(["routing-lab"], (text) => text.replace("subnet: 10.231.1.0/24", "subnet: 10.231.1.0"))
      // pyroute's compose file without its .env: the variable it needs is not set.
      mkdirSync(join(box.dir, "pyroute"))
      copyFileSync(
        join(fixtures, "stages", "pyroute-stage1", "docker-compose.yml"),
        join(box.dir, "pyroute", "docker-compose.yml")
      )
      return Effect.sync(() => {
        const bad = cli(["up", "routing-lab"], { cwd: box.dir })
        assert.strictEqual(bad.status, 2)
        assert.include(bad.stderr, "networks.net1.subnet")
        // A path that exists is loaded as a path: the name must not exist beside the sandbox.
        const escaping = cli(["up", `../testbed-no-such-stage-${process.pid}`], { cwd: box.dir })
        assert.strictEqual(escaping.status, 2)
        assert.include(escaping.stderr, "invalid stage name")
        // An empty compose file or a list is a definition to fix, not an empty stage that "is up".
        for (const [folder, text, message] of [
          ["empty", "", "the file is empty"],
          ["listed", "- client1\n- client2\n", "found a list"]
        ] as const) {
          mkdirSync(join(box.dir, folder))
          writeFileSync(join(box.dir, folder, "docker-compose.yml"), text)
          const result = cli(["up", `./${folder}`], { cwd: box.dir })
          assert.strictEqual(result.status, 2, result.stdout)
          assert.include(result.stderr, message)
          assert.notInclude(result.stdout, "is up")
        }
        const unset = cli(["up", "./pyroute"], { cwd: box.dir })
        assert.strictEqual(unset.status, 2)
        assert.include(unset.stderr, "services.client1.volumes[0]: variable PYROUTE_SRC_DIR is not set")
      }).pipe(
        Effect.onError(() => Effect.sync(() => cli(["prune"], { cwd: box.dir }))),
        Effect.ensuring(Effect.sync(() => box.cleanup()))
      )
    },
    120_000
  )

  it.live(
    "a SIGKILLed up leaves its containers only until the next prune, from any project; a live up is never touched",
    () => {
      const neverReady = (text: string) =>
        text.replaceAll(
          "[{ command: [test, -d, /root/src], timeout: 20 seconds }]",
          `[{ command: ["false"], timeout: 10 minutes }]`
        )
      const killed = sandbox(["routing-lab"], neverReady)
      const live = sandbox(["routing-lab"], neverReady)
      const other = sandbox([])
      const count = (box: typeof killed) => labelledContainers(StageState.namespaceOf(box.stateDir))
      const running = (box: typeof killed) =>
        count(box).pipe(
          Effect.filterOrFail((cs) => cs.length === 2 && cs.every((c) => c.State === "running")),
          Effect.retry(Schedule.spaced("200 millis")),
          Effect.timeout("120 seconds")
        )
      const children: Array<ChildProcess> = []
      return Effect.gen(function* () {
        for (const box of [killed, live]) {
          children.push(spawn(node, [bin, "stage", "up", "routing-lab"], { cwd: box.dir, stdio: "ignore" }))
        }
        yield* running(killed)
        yield* running(live)
        const [victim, survivor] = children
        const gone = new Promise((resolve) => victim?.on("exit", resolve))
        victim?.kill("SIGKILL")
        yield* Effect.promise(() => gone)
        // Another project (its own state directory) prunes: the dead up's stage goes, the live one stays.
        const prune = cli(["prune"], { cwd: other.dir })
        assert.strictEqual(prune.status, 0, prune.stderr)
        assert.deepStrictEqual((yield* count(killed)).length, 0)
        assert.deepStrictEqual((yield* count(live)).length, 2)
        const stopped = new Promise<number | null>((resolve) => survivor?.on("exit", (code) => resolve(code)))
        survivor?.kill("SIGINT")
        assert.strictEqual(yield* Effect.promise(() => stopped).pipe(Effect.timeout("90 seconds")), 130)
        assert.deepStrictEqual((yield* count(live)).length, 0)
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            for (const child of children) child.kill("SIGKILL")
            for (const box of [killed, live]) {
              cli(["prune"], { cwd: box.dir })
              box.cleanup()
            }
            other.cleanup()
          })
        )
      )
    },
    300_000
  )
})

describe.skipIf(!engineAvailable)("testbed stage impair (CLI, real Docker)", () => {
  it.live(
    "a SIGKILLed impair leaves nothing on the host: its qdiscs and nftables tables live in the nodes' namespaces",
    () => {
      const box = sandbox(["course-lab"], (text) =>
        text.replaceAll("10.231.21.", "10.231.11.").replaceAll("10.231.22.", "10.231.12.")
      )
      const host = () => ({
        qdiscs: spawnSync("tc", ["qdisc", "show"], { encoding: "utf8" })
          .stdout.split("\n")
          .filter((l) => /^qdisc (tbf|netem) /.test(l)),
        tables: spawnSync("nft", ["list", "tables"], { encoding: "utf8" })
          .stdout.split("\n")
          .filter((l) => l.includes("testbed_"))
      })
      const before = host()
      let child: ChildProcess | undefined
      return Effect.gen(function* () {
        assert.strictEqual(cli(["up", "course-lab"], { cwd: box.dir }).status, 0)
        const impaired = cli(["impair", "client1:net1", "--rate", "5mbit", "--loss", "10%"], { cwd: box.dir })
        assert.strictEqual(impaired.status, 0, impaired.stderr)
        assert.include(impaired.stdout, "client1:net1: rate 5mbit, loss 10%")
        // A flap in the foreground, killed while the link is down.
        const proc = spawn(node, [bin, "stage", "impair", "router:net2", "--flap", "3s,1s,50"], {
          cwd: box.dir,
          stdio: "ignore"
        })
        child = proc
        const gone = new Promise((resolve) => proc.on("exit", resolve))
        yield* Effect.sleep("4 seconds")
        proc.kill("SIGKILL")
        yield* Effect.promise(() => gone)
        assert.deepStrictEqual(host(), before)
        const status = cli(["status"], { cwd: box.dir })
        assert.include(status.stdout, "impaired client1:net1: rate 5mbit, loss 10%")
        const down = cli(["down"], { cwd: box.dir })
        assert.strictEqual(down.status, 0, down.stderr)
        assert.deepStrictEqual(host(), before)
        const left = yield* labelledContainers(StageState.namespaceOf(box.stateDir))
        assert.strictEqual(left.length, 0)
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            child?.kill("SIGKILL")
            cli(["down"], { cwd: box.dir })
            cli(["prune"], { cwd: box.dir })
            box.cleanup()
          })
        )
      )
    },
    300_000
  )
})
