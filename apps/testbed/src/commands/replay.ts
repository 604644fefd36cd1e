/**
 * `testbed replay record|serve|test|check`: record a TCP session through a proxy, replay it as a deterministic
 * fake server, run a client test against it, or check a script. Short flags follow record_proxy.py and
 * sock_test.py (-l listen, -r remote, -o output, -i input, -t script name). Errors carry their exit codes (2 for a
 * script, address or fault to fix, 3 for a remote or port out of reach): bin.ts says them in one line.
 */
import { ExitCode } from "@testbed/events"
import { RecordProxy, ScriptSource } from "@testbed/replay"
import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { sourceFlags, toSource } from "./replayFlags.ts"
import { serve, test } from "./replayServe.ts"

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
  (flags) => RecordProxy.run({ ...flags, connections: Option.getOrUndefined(flags.connections) })
).pipe(Command.withDescription("Record TCP sessions through a proxy into BASE-N.json"))

const check = Command.make(
  "check",
  {
    file: Argument.String("file").pipe(Argument.withDescription("The script file")),
    ...sourceFlags,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print one JSON document: entries with their figures, blobs, modules; or the error"),
      Flag.withDefault(false)
    )
  },
  (flags) =>
    flags.json
      ? ScriptSource.checkSummary(toSource(flags.file, flags)).pipe(
          Effect.flatMap((summary) => Console.log(JSON.stringify(summary))),
          // The error as JSON on stdout too, and the usual line on stderr with its exit code.
          Effect.tapError((error) =>
            Console.log(
              JSON.stringify({
                ok: false,
                file: flags.file,
                exitCode: ExitCode.ofError(error),
                error: { tag: error._tag, message: error.message }
              })
            )
          )
        )
      : Effect.gen(function* () {
          const lines = yield* ScriptSource.check(toSource(flags.file, flags))
          for (const line of lines) yield* Console.log(line)
        })
).pipe(Command.withDescription("Validate a script and its blobs and print what it holds"))

export const replay = Command.make("replay").pipe(
  Command.withDescription("Record a TCP session, replay it as a deterministic fake, fail on the first divergence"),
  Command.withSubcommands([record, serve, test, check])
)
