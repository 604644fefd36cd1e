/**
 * `testbed replay record|serve|test|check`: record a TCP session through a proxy, replay it as a deterministic
 * fake server, run a client test against it, or check a script. Short flags follow record_proxy.py and
 * sock_test.py (-l listen, -r remote, -o output, -i input, -t script name).
 */
import * as Path from "node:path"
import { LocalRunner } from "@testbed/commands"
import { EventBus, ExitCode } from "@testbed/events"
import {
  Action,
  BlobStore,
  CheckReport,
  Fault,
  Nds1,
  Nds2,
  RecordProxy,
  ReplayServer,
  Script,
  ScriptLoader,
  TestLauncher
} from "@testbed/replay"
import { Console, type Duration, Effect, Layer, Option, Runtime, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"
import * as TimeSpanFlag from "../TimeSpanFlag.ts"

export class AddressInvalid extends Schema.TaggedError<AddressInvalid>()("AddressInvalid", {
  address: Schema.String
}) {
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
  override get message(): string {
    return `invalid address "${this.address}": expected HOST:PORT, :PORT or PORT`
  }
}

/** `host:port`, `:port`, `port`, `[::1]:port`. */
const parseAddress = (address: string, defaultHost: string) => {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address) ?? /^()()(\d+)$/.exec(address)
  const port = match === null ? Number.NaN : Number(match[3])
  if (match === null || !Number.isInteger(port) || port > 65535) return Effect.fail(new AddressInvalid({ address }))
  return Effect.succeed({ host: match[1] || match[2] || defaultHost, port })
}

const scriptFlags = {
  input: Flag.String("input").pipe(Flag.withAlias("i"), Flag.withDescription("The script file")),
  name: Flag.String("test-name").pipe(
    Flag.withAlias("t"),
    Flag.withDescription("The script entry to run"),
    Flag.withDefault(Script.defaultName)
  ),
  listen: Flag.String("listen").pipe(
    Flag.withAlias("l"),
    Flag.withDescription("HOST:PORT to listen on (port 0: any free port)"),
    Flag.withDefault("127.0.0.1:0")
  ),
  stepTimeout: TimeSpanFlag.optional("step-timeout", "How long a step may wait for client input (default 10 s)"),
  fault: Flag.String("fault").pipe(
    Flag.withDescription(
      "Misbehave: delay=S, chunk=SIZE[/PAUSE], truncate=BYTES, reset; optionally @N (the N-th response)"
    ),
    Flag.atLeast(0)
  ),
  blobs: Flag.String("blobs").pipe(
    Flag.withDescription("Blob directory (default: blobs/ beside the script)"),
    Flag.optional
  ),
  blobCache: Flag.String("blob-cache").pipe(
    Flag.withDescription("Remote blob cache, a directory or http(s) URL (default $REPLAY_BLOB_REMOTE_CACHE)"),
    Flag.optional
  ),
  root: Flag.String("root").pipe(Flag.withDescription("External files must stay under this directory"), Flag.optional),
  allowOutsideRoot: Flag.Boolean("allow-outside-root").pipe(Flag.withDefault(false)),
  allowModulePath: Flag.Boolean("allow-module-path").pipe(
    Flag.withDescription("Let `import` load action modules from file paths"),
    Flag.withDefault(false)
  ),
  optionalConnections: Flag.Boolean("optional-connections").pipe(
    Flag.withDescription("Connections of the script that no client opened are not failures"),
    Flag.withDefault(false)
  )
}

interface ScriptFlags {
  readonly input: string
  readonly name: string
  readonly blobs: Option.Option<string>
  readonly blobCache: Option.Option<string>
  readonly root: Option.Option<string>
  readonly allowOutsideRoot: boolean
  readonly allowModulePath: boolean
}

/** Modules `import` may name. */
const registry = Action.ActionRegistry.layer([Nds1.module, Nds2.module])

const blobLayer = (input: string, flags: Pick<ScriptFlags, "blobs" | "blobCache">) =>
  BlobStore.BlobStore.layer({
    dir: Option.getOrElse(flags.blobs, () => Path.join(Path.dirname(input), "blobs")),
    remote: Option.getOrElse(flags.blobCache, () => process.env.REPLAY_BLOB_REMOTE_CACHE)
  })

/** Loads the script; a script that cannot be loaded exits with its error's code (2 for a file problem). */
const loadScript = (flags: ScriptFlags) =>
  ScriptLoader.load({
    file: flags.input,
    name: flags.name,
    root: Option.getOrUndefined(flags.root),
    allowOutsideRoot: flags.allowOutsideRoot,
    allowModulePaths: flags.allowModulePath
  }).pipe(Effect.provide(Layer.merge(blobLayer(flags.input, flags), registry)))

const serveOptions = (flags: {
  listen: string
  stepTimeout: Option.Option<Duration.Duration>
  fault: ReadonlyArray<string>
  optionalConnections: boolean
}) =>
  Effect.gen(function* () {
    const address = yield* parseAddress(flags.listen, "127.0.0.1")
    const faults = yield* Effect.forEach(flags.fault, Fault.parseRule)
    return {
      host: address.host,
      port: address.port,
      faults,
      optionalConnections: flags.optionalConnections,
      stepTimeout: Option.getOrUndefined(flags.stepTimeout)
    }
  })

const record = Command.make(
  "record",
  {
    listen: Flag.String("listen").pipe(
      Flag.withAlias("l"),
      Flag.withDescription("HOST:PORT to listen on"),
      Flag.withDefault("127.0.0.1:8088")
    ),
    remote: Flag.String("remote").pipe(Flag.withAlias("r"), Flag.withDescription("HOST:PORT of the real server")),
    output: Flag.String("output").pipe(
      Flag.withAlias("o"),
      Flag.withDescription("Basename: the script goes to BASE-N.json, blobs to blobs/ beside it"),
      Flag.withDefault("proxy_script")
    ),
    connections: Flag.Int("connections").pipe(
      Flag.withAlias("n"),
      Flag.withDescription("Stop after this many connections (default: until SIGINT/SIGTERM)"),
      Flag.optional
    ),
    keepEmpty: Flag.Boolean("keep-empty").pipe(
      Flag.withDescription("Keep connections closed before a byte was exchanged (port probes)"),
      Flag.withDefault(false)
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const listen = yield* parseAddress(flags.listen, "127.0.0.1")
      const remote = yield* parseAddress(flags.remote, "127.0.0.1")
      yield* RecordProxy.record({
        listenHost: listen.host,
        listenPort: listen.port,
        remoteHost: remote.host,
        remotePort: remote.port,
        base: flags.output,
        connections: Option.getOrUndefined(flags.connections),
        keepEmpty: flags.keepEmpty,
        onListening: (host, port) =>
          Console.log(`Recording proxy listening on ${host}:${port}, forwarding to ${remote.host}:${remote.port}`)
      }).pipe(Effect.provide(BlobStore.BlobStore.layer({ dir: Path.join(Path.dirname(flags.output), "blobs") })))
    })
).pipe(Command.withDescription("Record TCP sessions through a proxy into BASE-N.json"))

const serve = Command.make(
  "serve",
  {
    ...scriptFlags,
    connections: Flag.Int("connections").pipe(
      Flag.withAlias("n"),
      Flag.withDescription("Stop after this many connections (compound_multi: its sub-scripts)"),
      Flag.optional
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const loaded = yield* loadScript(flags)
      const options = yield* serveOptions(flags)
      const outcome = yield* Effect.scoped(
        Effect.gen(function* () {
          const server = yield* ReplayServer.serve(loaded.plan, {
            ...options,
            connections: Option.getOrUndefined(flags.connections)
          })
          // Until done, or until SIGINT/SIGTERM: then unfinished connections count as failures.
          return yield* server.done.pipe(
            Effect.onInterrupt(() => server.finish(0).pipe(Effect.flatMap(TestLauncher.report)))
          )
        })
      )
      yield* TestLauncher.report(outcome)
      if (outcome.failures.length > 0) return yield* new ExitWith({ code: ExitCode.testFailed })
    })
).pipe(Command.withDescription("Replay a script as a fake server, failing on the first divergence"))

const test = Command.make(
  "test",
  {
    ...scriptFlags,
    timeout: TimeSpanFlag.optional("timeout", "Overall timeout (default 300 s); exit 124 when it hits"),
    command: Argument.String("command").pipe(
      Argument.withDescription("The client test to run (after --), with its arguments"),
      Argument.variadic({ min: 1 })
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const loaded = yield* loadScript(flags)
      const options = yield* serveOptions(flags)
      const [program, ...args] = flags.command
      const result = yield* TestLauncher.run(loaded.plan, {
        ...options,
        program: program!,
        args,
        timeout: Option.getOrUndefined(flags.timeout)
      }).pipe(Effect.provide(LocalRunner.layer.pipe(Layer.provide(EventBus.EventBus.layer))))
      yield* TestLauncher.report(result.outcome)
      if (result.timedOut) yield* Console.error("Replay test timed out")
      if (result.exitCode !== 0) return yield* new ExitWith({ code: result.exitCode })
    })
).pipe(Command.withDescription("Replay a script and run a client test against it; exit with its code, or 1"))

const check = Command.make(
  "check",
  {
    file: Argument.String("file").pipe(Argument.withDescription("The script file")),
    blobs: scriptFlags.blobs,
    blobCache: scriptFlags.blobCache,
    root: scriptFlags.root,
    allowOutsideRoot: scriptFlags.allowOutsideRoot,
    allowModulePath: scriptFlags.allowModulePath
  },
  (flags) =>
    Effect.gen(function* () {
      const scripts = yield* ScriptLoader.loadAll({
        file: flags.file,
        root: Option.getOrUndefined(flags.root),
        allowOutsideRoot: flags.allowOutsideRoot,
        allowModulePaths: flags.allowModulePath
      }).pipe(Effect.provide(Layer.merge(blobLayer(flags.file, flags), registry)))
      for (const line of CheckReport.lines(flags.file, scripts)) yield* Console.log(line)
    })
).pipe(Command.withDescription("Validate a script and its blobs and print what it holds"))

export const replay = Command.make("replay").pipe(
  Command.withDescription("Record a TCP session, replay it as a deterministic fake, fail on the first divergence"),
  Command.withSubcommands([record, serve, test, check])
)
