/**
 * The replay server as a process of its own, for a harness that starts services as commands (the experiments
 * `replay` service plugin runs `bin/serve.ts` through this):
 *
 *   serve --script FILE --outcome FILE [--name NAME] [--host HOST] [--port PORT] [--connections N]
 *         [--step-timeout SECONDS]
 *
 * Prints `Test server listening on HOST:PORT` once it listens (its readiness), serves `connections` clients (1),
 * writes the verdict to `--outcome` (see Verdict), prints the summary, and exits 0 when the replay passed, 1 when
 * it failed, 2 when the arguments or the script are wrong. SIGTERM ends it early: unfinished connections then count
 * as failures. Blobs are read from `blobs/` beside the script; only the built-in actions are available.
 */
import { ExitCode, ProcessArguments } from "@testbed/events"
import { Console, Effect, Schema } from "effect"
import * as ReplayServer from "./ReplayServer.ts"
import * as ScriptSource from "./ScriptSource.ts"
import * as Verdict from "./Verdict.ts"

const Count = Schema.FiniteFromString.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1))

/** The command line, as `--key value` pairs. */
export const Arguments = Schema.Struct({
  script: Schema.String,
  outcome: Schema.String,
  name: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("recorded_script"))),
  host: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("127.0.0.1"))),
  port: Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 65535 })).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("0"))
  ),
  connections: Count.pipe(Schema.withDecodingDefaultKey(Effect.succeed("1"))),
  "step-timeout": Schema.FiniteFromString.check(Schema.isGreaterThanOrEqualTo(0)).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("10"))
  )
})
export type Arguments = typeof Arguments.Type

export const ArgumentsInvalid = ProcessArguments.ArgumentsInvalid
export type ArgumentsInvalid = ProcessArguments.ArgumentsInvalid

export const parse = Effect.fn("ServeProcess.parse")(function* (argv: ReadonlyArray<string>) {
  return yield* ProcessArguments.decode(Arguments, argv)
})

/** Serves the script until its connections are done, and writes the verdict; 0 when the replay passed, else 1. */
export const serve = Effect.fn("ServeProcess.serve")(function* (args: Arguments) {
  const loaded = yield* ScriptSource.load({ file: args.script, name: args.name, modules: [], blobCache: "" })
  const outcome = yield* ReplayServer.serveUntilDone(
    loaded.plan,
    { host: args.host, port: args.port, connections: args.connections, stepTimeout: args["step-timeout"] * 1000 },
    () => Effect.void
  )
  const verdict = Verdict.fromOutcome(outcome)
  yield* Verdict.write(args.outcome, verdict)
  yield* Console.log(ReplayServer.formatSummary(outcome.summary))
  for (const failure of outcome.failures) yield* Console.error(failure.message)
  return verdict.passed ? 0 : 1
})

/**
 * The whole process: its exit code, the error's own when it fails (2 when the arguments or the script are wrong,
 * 3 when the port cannot be listened on or the verdict not written), said on stderr.
 */
export const main = (argv: ReadonlyArray<string>) =>
  Effect.flatMap(parse(argv), serve).pipe(
    Effect.catch((error) => Effect.as(Console.error(`replay-server: ${error.message}`), ExitCode.ofError(error))),
    Effect.withSpan("ServeProcess.main")
  )
