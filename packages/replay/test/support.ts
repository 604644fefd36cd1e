// Shared helpers of the replay tests: real processes, real sockets, temp dirs, all released by the test's scope.
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { LocalRunner } from "@testbed/commands"
import { Effect, FileSystem, Layer, Option, type Scope } from "effect"
import { ActionRegistry, type ActionModule } from "../src/Action.ts"
import { BlobStore } from "../src/BlobStore.ts"
import type { Response } from "../src/Plan.ts"
import * as ScriptLoader from "../src/ScriptLoader.ts"

export const repo = Path.resolve(import.meta.dirname, "../../..")
export const node = process.execPath
export const fixtures = Path.join(repo, "fixtures/replay")
export const greeter = Path.join(fixtures, "greeter.ts")
export const client = Path.join(fixtures, "client.ts")

export const platform = NodeServices.layer
export const runnerLayer = LocalRunner.layer.pipe(Layer.provide(EventBus.EventBus.layer), Layer.provide(platform))

export const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) =>
  fs.makeTempDirectoryScoped({ prefix: "replay-test-" })
)

/** Writes files (path → JSON value or text) under `dir`. */
export const writeFiles = (dir: string, files: Record<string, unknown>) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    Effect.forEach(Object.entries(files), ([name, content]) =>
      fs
        .makeDirectory(Path.dirname(Path.join(dir, name)), { recursive: true })
        .pipe(
          Effect.andThen(
            fs.writeFileString(
              Path.join(dir, name),
              typeof content === "string" ? content : JSON.stringify(content, null, 2)
            )
          )
        )
    )
  ).pipe(Effect.orDie)

export const loadLayer = (dir: string, modules: ReadonlyArray<ActionModule> = [], remote?: string) =>
  Layer.mergeAll(BlobStore.layer({ dir: Path.join(dir, "blobs"), remote }), ActionRegistry.layer(modules)).pipe(
    Layer.provideMerge(platform)
  )

/** Loads `<dir>/<file>` with the blobs beside it. */
export const loadIn = (
  dir: string,
  file: string,
  options: Omit<ScriptLoader.LoadOptions, "file"> = {},
  modules: ReadonlyArray<ActionModule> = []
) => ScriptLoader.load({ file: Path.join(dir, file), ...options }).pipe(Effect.provide(loadLayer(dir, modules)))

export interface Proc {
  readonly child: ChildProcess.ChildProcess
  readonly output: () => string
  /** Resolves with the first stdout match of the pattern. */
  readonly waitFor: (pattern: RegExp) => Effect.Effect<RegExpMatchArray>
  readonly exitCode: Effect.Effect<number | null>
}

/** A child process killed (whole group) when the scope closes. */
export const spawn = (
  program: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string } = {}
): Effect.Effect<Proc, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = ChildProcess.spawn(program, args, {
        env: { ...process.env, ...options.env },
        cwd: options.cwd,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true
      })
      let out = ""
      const listeners = new Set<() => void>()
      const notify = () => {
        for (const l of listeners) l()
      }
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString()
        notify()
      })
      child.stderr!.on("data", (chunk: Buffer) => {
        out += chunk.toString()
        notify()
      })
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      const proc: Proc = {
        child,
        output: () => out,
        waitFor: (pattern) =>
          Effect.callback<RegExpMatchArray>((resume) => {
            const check = () => {
              const match = out.match(pattern)
              if (match) {
                listeners.delete(check)
                resume(Effect.succeed(match))
              }
            }
            listeners.add(check)
            check()
            return Effect.sync(() => listeners.delete(check))
          }),
        exitCode: Effect.promise(() => exited)
      }
      return proc
    }),
    // The whole group: a client test may have children of its own.
    (proc) =>
      proc.child.exitCode !== null || proc.child.pid === undefined
        ? Effect.void
        : Effect.try(() => process.kill(-proc.child.pid!, "SIGKILL")).pipe(Effect.ignore)
  )

/** Starts the greeter fixture server on a free port. */
export const startGreeter = Effect.gen(function* () {
  const proc = yield* spawn(node, [greeter, "0"])
  const match = yield* proc.waitFor(/listening on (\d+)/)
  return { proc, port: Number(match[1]) }
})

/** Runs the fixture client against a port; resolves with its exit code and output. */
export const runClient = (port: number, args: ReadonlyArray<string> = []) =>
  Effect.scoped(
    Effect.gen(function* () {
      const proc = yield* spawn(node, [client, ...args], { env: { NDS_TEST_PORT: String(port) } })
      const code = yield* proc.exitCode
      return { code, output: proc.output() }
    })
  )

/** A raw TCP client for the tests: connect, write, read everything until the server closes. */
export const rawClient = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket>((resume) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      socket.once("connect", () => resume(Effect.succeed(socket)))
      socket.once("error", (error) => resume(Effect.die(error)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  ).pipe(
    Effect.map((socket) => {
      const chunks: Array<Buffer> = []
      let error: string | undefined
      socket.on("data", (chunk: Buffer) => chunks.push(chunk))
      socket.on("error", (e) => {
        error = (e as NodeJS.ErrnoException).code ?? e.message
      })
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()))
      return {
        socket,
        write: (bytes: string | Uint8Array) => Effect.sync(() => socket.write(bytes)),
        end: Effect.sync(() => socket.end()),
        /** Waits for the server to close; returns what it sent and the socket error, if any. */
        received: Effect.promise(() => closed).pipe(Effect.map(() => ({ bytes: Buffer.concat(chunks), error }))),
        /** Waits until at least n bytes came. */
        readAtLeast: (n: number) =>
          Effect.callback<Buffer>((resume) => {
            const check = () => {
              const all = Buffer.concat(chunks)
              if (all.length >= n || socket.destroyed) {
                socket.off("data", check)
                resume(Effect.succeed(all))
              }
            }
            socket.on("data", check)
            socket.once("close", check)
            check()
          })
      }
    })
  )

export const getOrThrow = <A>(option: Option.Option<A>): A => Option.getOrThrow(option)

/** A step's response held in memory (a small one); a streamed blob is a test failure here. */
export const inMemory = (response: Response): Uint8Array => {
  if (response instanceof Uint8Array) return response
  throw new Error(`the response is the streamed blob ${response.name}, not bytes in memory`)
}

/**
 * Through a recording proxy at `port`: one greeter session run to its end, and a second connection left open
 * mid-session (greeted, one name sent and answered), as a proxy stopped early would have them.
 */
export const sessionsCutShort = (port: number) =>
  Effect.gen(function* () {
    const done = yield* runClient(port)
    assert.strictEqual(done.code, 0, done.output)
    const open = yield* rawClient(port)
    yield* open.readAtLeast(26)
    yield* open.write("NAME half\n")
    yield* open.readAtLeast(26 + 22)
    return open
  })

/** The script a proxy stopped after `sessionsCutShort` writes: the whole session, and the open one so far. */
export const assertCutShortScript = (text: string) => {
  const [first, second] = JSON.parse(text).recorded_script.scripts
  assert.strictEqual(first.scripts.length, 3)
  assert.deepStrictEqual(second.scripts[1], {
    type: "script",
    command: "NAME half\n",
    response: "GREETING Hello, half!\n"
  })
}
