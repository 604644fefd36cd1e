/**
 * A CommandRunner that starts nothing: each command gets the outcome a script gives it (exit code, output, how long
 * it "runs" on Effect's clock), and every command asked for is recorded. For unit tests of code that runs
 * commands: timeouts, retries and events behave as with a real runner (it is built by `CommandRunner.make`), and
 * TestClock decides when a scripted command ends. `CommandRunner.layerTest` is this layer.
 */
import type { EventBus } from "@testbed/events"
import { Clock, Context, Duration, Effect, Layer, Option, Ref, Stream } from "effect"
import * as Command from "./Command.ts"
import { type CommandError, CommandNotFound, CommandSpawnFailed } from "./CommandError.ts"
import type { CommandResult, OutputChunk } from "./CommandResult.ts"
import * as CommandRunner from "./CommandRunner.ts"
import * as OutputCapture from "./OutputCapture.ts"

/** What a scripted command does. Every field has a default: a command that succeeds at once, silently. */
export interface Outcome {
  readonly exitCode?: number | undefined
  /** Ended by this signal (the exit code is then null). */
  readonly signal?: string | undefined
  readonly stdout?: string | undefined
  readonly stderr?: string | undefined
  /** How long it runs, on the Clock; a command's own `timeout` ends it sooner (SIGTERM, timed out). */
  readonly duration?: Duration.Input | undefined
  /** It cannot be started: `CommandNotFound` (`"not-found"`) or `CommandSpawnFailed` with this reason. */
  readonly cannotStart?: "not-found" | string | undefined
}

/** The outcome of each command (it sees the command with its id); may be effectful (count calls, wait…). */
export type Script = (command: CommandRunner.ValidCommand) => Outcome | Effect.Effect<Outcome>

/** `program arg1 arg2` (or `sh -c SCRIPT`): what scripts usually match on. */
export const commandLine = (command: Command.Command): string => {
  const { program, args } = Command.argv(command)
  return [program, ...args].join(" ")
}

/** A script from rules tried in order: the first whose text or pattern matches the command line wins. */
export const rules =
  (entries: ReadonlyArray<readonly [string | RegExp, Outcome]>, otherwise: Outcome = {}): Script =>
  (command) => {
    const line = commandLine(command)
    const hit = entries.find(([pattern]) => (typeof pattern === "string" ? line === pattern : pattern.test(line)))
    return hit === undefined ? otherwise : hit[1]
  }

/** The commands a scripted runner was asked to run, in order (attempts of a retried command count each). */
export class ScriptedRunner extends Context.Service<
  ScriptedRunner,
  { readonly ran: Effect.Effect<ReadonlyArray<CommandRunner.ValidCommand>> }
>()("@testbed/commands/ScriptedRunner") {}

const encoder = new TextEncoder()

const captured = (text: string, limit: number) => {
  const capture = OutputCapture.make(limit)
  capture.push(encoder.encode(text))
  return capture
}

/** Runs the scripted outcome on the Clock: ends after its duration, or at the command's timeout. */
const play = Effect.fn("ScriptedRunner.play")(function* (
  command: CommandRunner.ValidCommand,
  outcome: Outcome
): Effect.fn.Return<CommandResult, CommandError> {
  const program = Command.argv(command).program
  if (outcome.cannotStart === "not-found") return yield* new CommandNotFound({ commandId: command.id, program })
  if (outcome.cannotStart !== undefined) {
    return yield* new CommandSpawnFailed({ commandId: command.id, program, reason: outcome.cannotStart })
  }
  const startedAt = yield* Clock.currentTimeMillis
  const duration = Duration.fromInputUnsafe(outcome.duration ?? Duration.zero)
  const finished = yield* Effect.sleep(duration).pipe(
    command.timeout === undefined ? Effect.asSome : Effect.timeoutOption(command.timeout)
  )
  const timedOut = Option.isNone(finished)
  const limit = command.maxOutputBytes ?? Command.defaultMaxOutputBytes
  const result = CommandRunner.attemptResult(command, {
    exitCode: timedOut || outcome.signal !== undefined ? null : (outcome.exitCode ?? 0),
    signal: timedOut ? "SIGTERM" : (outcome.signal ?? null),
    stdout: captured(outcome.stdout ?? "", limit),
    stderr: captured(outcome.stderr ?? "", limit),
    startedAt,
    endedAt: yield* Clock.currentTimeMillis,
    timedOut
  })
  return yield* CommandRunner.judge(command, result)
})

/**
 * The scripted runner as a `CommandRunner` and a `ScriptedRunner` (what was run). Needs the `EventBus`, like any
 * runner: `command.*` events are published as for real commands.
 */
export const layer = (
  script: Script
): Layer.Layer<CommandRunner.CommandRunner | ScriptedRunner, never, EventBus.EventBus> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const ran = yield* Ref.make<ReadonlyArray<CommandRunner.ValidCommand>>([])
      const outcomeOf = (command: CommandRunner.ValidCommand) =>
        Effect.andThen(
          Ref.update(ran, (all) => [...all, command]),
          () => {
            const outcome = script(command)
            return Effect.isEffect(outcome) ? outcome : Effect.succeed(outcome)
          }
        )
      const run = (command: CommandRunner.ValidCommand) =>
        Effect.flatMap(outcomeOf(command), (outcome) => play(command, outcome))
      const stream = (command: CommandRunner.ValidCommand): Stream.Stream<OutputChunk, CommandError> =>
        Stream.unwrap(
          Effect.map(outcomeOf(command), (outcome) =>
            Stream.make<Array<OutputChunk>>(
              { _tag: "Stdout", bytes: encoder.encode(outcome.stdout ?? "") },
              { _tag: "Stderr", bytes: encoder.encode(outcome.stderr ?? "") }
            ).pipe(
              Stream.filter((chunk) => chunk._tag === "Exit" || chunk.bytes.length > 0),
              Stream.concat(Stream.fromEffect(Effect.map(play(command, outcome), (result) => exitChunk(result))))
            )
          )
        )
      const runner = yield* CommandRunner.make({ name: "scripted", run, stream })
      return Context.make(CommandRunner.CommandRunner, runner).pipe(
        Context.add(ScriptedRunner, ScriptedRunner.of({ ran: Ref.get(ran) }))
      )
    })
  )

const exitChunk = (result: CommandResult): OutputChunk => ({ _tag: "Exit", result })
