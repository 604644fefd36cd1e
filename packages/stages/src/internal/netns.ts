// Host tools run inside a node's network namespace (`nsenter --target PID --net`): ip, tc, nft, ss, busybox ping,
// and Node itself for measurements. Nothing is needed in the node's image, and whatever these tools change lives in
// the node's namespace, so it goes when the node goes, even when testbed is SIGKILLed. Each run has a deadline and
// a bounded capture; the child gets a clean environment (a PATH, nothing of ours).
import { Duration, Effect, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { NetworkToolFailed } from "../StageError.ts"

/** A node's network namespace, entered through the pid of its container's first process. */
export interface Namespace {
  readonly node: string
  readonly pid: number
}

export interface ToolResult {
  readonly exitCode: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Output kept per stream: tools answer in lines; a measurement in one JSON line. */
const captureLimit = 256 * 1024

export const cleanEnvironment = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }

const collect = (stream: Stream.Stream<Uint8Array, unknown>) =>
  Stream.runFold(
    stream,
    () => ({ text: "", size: 0 }),
    (acc, bytes) => {
      if (acc.size >= captureLimit) return acc
      const chunk = Buffer.from(bytes).subarray(0, captureLimit - acc.size)
      return { text: acc.text + chunk.toString("utf8"), size: acc.size + chunk.length }
    }
  ).pipe(
    Effect.map((acc) => acc.text),
    Effect.orElseSucceed(() => "")
  )

/** The command line that runs `argv` in the namespace. */
export const enter = (ns: Namespace, argv: ReadonlyArray<string>): ReadonlyArray<string> => [
  "nsenter",
  `--target=${ns.pid}`,
  "--net",
  "--",
  ...argv
]

/** Runs `argv` in the namespace; a missing tool or a deadline passed is a `NetworkToolFailed` (exit code null). */
export const run = Effect.fn("Netns.run")(function* (
  ns: Namespace,
  argv: ReadonlyArray<string>,
  options: { readonly stdin?: string; readonly timeout?: Duration.Duration } = {}
) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const [program = "nsenter", ...args] = enter(ns, argv)
  const failed = (output: string) => new NetworkToolFailed({ node: ns.node, command: argv, exitCode: null, output })
  const command = ChildProcess.make(program, args, {
    env: cleanEnvironment,
    extendEnv: false,
    stdin: options.stdin === undefined ? "ignore" : Stream.make(new TextEncoder().encode(options.stdin))
  })
  const once = Effect.gen(function* () {
    const handle = yield* spawner.spawn(command)
    const [stdout, stderr, exitCode] = yield* Effect.all(
      [collect(handle.stdout), collect(handle.stderr), handle.exitCode],
      {
        concurrency: "unbounded"
      }
    )
    return { exitCode: Number(exitCode), stdout, stderr } satisfies ToolResult
  }).pipe(
    Effect.scoped,
    Effect.mapError((e) => failed(e.message))
  )
  const timeout = options.timeout ?? Duration.seconds(30)
  return yield* once.pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(failed(`no answer within ${Duration.format(timeout)}`))
    })
  )
})

/** The same, failing with `NetworkToolFailed` unless the tool exits 0. */
export const runOk = Effect.fn("Netns.runOk")(function* (
  ns: Namespace,
  argv: ReadonlyArray<string>,
  options: { readonly stdin?: string; readonly timeout?: Duration.Duration } = {}
) {
  const result = yield* run(ns, argv, options)
  if (result.exitCode !== 0) {
    return yield* new NetworkToolFailed({
      node: ns.node,
      command: argv,
      exitCode: result.exitCode,
      output: `${result.stderr}${result.stdout}`
    })
  }
  return result
})
