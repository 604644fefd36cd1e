/**
 * `testbed replay serve` (replay a script as a fake server until its connections are done or SIGINT/SIGTERM) and
 * `testbed replay test -- CMD…` (and run a client test against it): exit codes in @testbed/replay's README.
 */
import { LocalRunner } from "@testbed/commands"
import { EventBus, ExitCode } from "@testbed/events"
import { ReplayMetrics, ReplayServer, TestLauncher } from "@testbed/replay"
import { type Duration, Effect, Layer, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"
import * as TimeSpanFlag from "../TimeSpanFlag.ts"
import { metricsLayer, metricsPort } from "./metricsFlag.ts"
import { serveFlags, toSource } from "./replayFlags.ts"

interface Flags {
  readonly listen: string
  readonly stepTimeout: Option.Option<Duration.Duration>
  readonly fault: ReadonlyArray<string>
  readonly optionalConnections: boolean
}

// Errors carry their exit codes (2 for a script, address or fault to fix, 3 for a port that cannot be listened
// on): bin.ts says them in one line.
const serveOptions = (flags: Flags, connections?: number) =>
  ReplayServer.optionsFromFlags({
    listen: flags.listen,
    stepTimeout: Option.getOrUndefined(flags.stepTimeout),
    faults: flags.fault,
    connections,
    optionalConnections: flags.optionalConnections
  })

export const serve = Command.make(
  "serve",
  {
    ...serveFlags,
    connections: Flag.Int("connections").pipe(
      Flag.withAlias("n"),
      Flag.withDescription("Stop after this many connections (compound_multi: its sub-scripts)"),
      Flag.optional
    ),
    metricsPort
  },
  (flags) =>
    Effect.gen(function* () {
      const options = yield* serveOptions(flags, Option.getOrUndefined(flags.connections))
      // The endpoint listens first (a port in use is a usage error before anything is served); its counters are
      // the server's, read at each scrape once it listens.
      let server: ReplayServer.RunningServer | undefined
      const refresh = ReplayMetrics.refresher(Effect.suspend(() => server?.summary ?? Effect.succeed(undefined)))
      const outcome = yield* ReplayServer.serveFile(toSource(flags.input, flags, flags.name), {
        ...options,
        onListening: (running) =>
          Effect.sync(() => {
            server = running
          })
      }).pipe(
        Effect.provide(
          metricsLayer(flags.metricsPort, Layer.empty, refresh).pipe(Layer.provide(EventBus.EventBus.layer))
        )
      )
      if (outcome.failures.length > 0) return yield* new ExitWith({ code: ExitCode.testFailed })
    })
).pipe(Command.withDescription("Replay a script as a fake server, failing on the first divergence"))

export const test = Command.make(
  "test",
  {
    ...serveFlags,
    timeout: TimeSpanFlag.optional("timeout", "Overall timeout (default 300 s); exit 124 when it hits"),
    command: Argument.String("command").pipe(
      Argument.withDescription("The client test to run (after --), with its arguments"),
      Argument.variadic({ min: 1 })
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const options = yield* serveOptions(flags)
      const [program, ...args] = flags.command
      const result = yield* TestLauncher.runFile(toSource(flags.input, flags, flags.name), {
        ...options,
        program: program!,
        args,
        timeout: Option.getOrUndefined(flags.timeout)
      }).pipe(Effect.provide(LocalRunner.layer.pipe(Layer.provide(EventBus.EventBus.layer))))
      if (result.exitCode !== 0) return yield* new ExitWith({ code: result.exitCode })
    })
).pipe(Command.withDescription("Replay a script and run a client test against it; exit with its code, or 1"))
