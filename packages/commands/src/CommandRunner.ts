/**
 * The service every part of testbed runs commands through. Runners differ in *where* a command runs
 * (this machine, a container, a fleet agent); each is a layer of this one service, so nothing here is local.
 * `make` turns a runner's single attempt into the full service: validation, ids, retries and events.
 */
import { type CommandEvent, EventBus, type TestbedEvent } from "@testbed/events"
import { Clock, Context, Duration, Effect, Schedule, Stream } from "effect"
import * as Command from "./Command.ts"
import { type CommandError, CommandFailed, CommandTimedOut } from "./CommandError.ts"
import type { CommandResult, OutputChunk } from "./CommandResult.ts"
import type * as OutputCapture from "./OutputCapture.ts"
// A cycle, on purpose: `layerTest` is the scripted runner, built by `make` below; nothing runs at import time.
import * as ScriptedRunner from "./ScriptedRunner.ts"

export class CommandRunner extends Context.Service<
  CommandRunner,
  {
    /** Short name of where commands run, recorded in events: "local", "docker:<container>", "agent:<id>". */
    readonly name: string
    /**
     * Runs the command to completion (with its retries). Succeeds only with an exit code in
     * `successExitCodes`; interruption ends the whole process tree.
     */
    readonly run: (command: Command.Command) => Effect.Effect<CommandResult, CommandError>
    /** Runs one attempt, emitting every output byte as it arrives and ending with the result. */
    readonly stream: (command: Command.Command) => Stream.Stream<OutputChunk, CommandError>
  }
>()("@testbed/commands/CommandRunner") {
  /**
   * A runner that starts nothing, for unit tests: each command's outcome comes from `script`, ends on the Clock,
   * and is recorded (`ScriptedRunner.ran`). See `ScriptedRunner`.
   */
  static readonly layerTest = (script: ScriptedRunner.Script) => ScriptedRunner.layer(script)
}

/** A validated command: its id is known. */
export type ValidCommand = Command.Command & { readonly id: string }

/** What a runner implements: one attempt of a validated command, as a result or as a stream. */
export interface Attempt {
  readonly name: string
  /** One attempt; fails with `CommandFailed` / `CommandTimedOut` (carrying the result) when it did not succeed. */
  readonly run: (command: ValidCommand) => Effect.Effect<CommandResult, CommandError>
  /** One attempt as output chunks ending with an `Exit` chunk; fails like `run` when it did not succeed. */
  readonly stream: (command: ValidCommand) => Stream.Stream<OutputChunk, CommandError>
}

/** What a runner saw of one attempt, before the command's rules say whether it succeeded. */
export interface Observed {
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdout: OutputCapture.OutputCapture
  readonly stderr: OutputCapture.OutputCapture
  /** Epoch millis, from `Clock`. */
  readonly startedAt: number
  readonly endedAt: number
  readonly timedOut: boolean
}

/** The result of one attempt, as every runner reports it. */
export const attemptResult = (command: ValidCommand, observed: Observed): CommandResult => ({
  commandId: command.id,
  exitCode: observed.exitCode,
  signal: observed.signal,
  stdout: observed.stdout.text(),
  stderr: observed.stderr.text(),
  startedAt: new Date(observed.startedAt).toISOString(),
  endedAt: new Date(observed.endedAt).toISOString(),
  durationMs: observed.endedAt - observed.startedAt,
  attempts: 1,
  timedOut: observed.timedOut,
  truncated: observed.stdout.truncated() || observed.stderr.truncated()
})

/** Applies the command's rules to an attempt's result: timed out, an exit code not in `successExitCodes`, or success. */
export const judge = (
  command: ValidCommand,
  result: CommandResult
): Effect.Effect<CommandResult, CommandTimedOut | CommandFailed> => {
  if (result.timedOut) {
    return Effect.fail(
      new CommandTimedOut({
        commandId: command.id,
        timeoutMs: Duration.toMillis(command.timeout ?? Duration.zero),
        result
      })
    )
  }
  const success = command.successExitCodes ?? [0]
  if (result.exitCode === null || !success.includes(result.exitCode)) {
    return Effect.fail(new CommandFailed({ commandId: command.id, result }))
  }
  return Effect.succeed(result)
}

/** Default first retry delay; each next one is `factor` (default 2) times longer. */
export const defaultBackoff: Duration.Duration = Duration.millis(100)

/**
 * The delays between attempts. Built on Effect's clock (`Schedule.exponential`), so `TestClock` drives it.
 */
export const retrySchedule = (retries: Command.Retries): Schedule.Schedule<Duration.Duration> =>
  Schedule.max([
    Schedule.exponential(retries.backoff ?? defaultBackoff, retries.factor ?? 2),
    Schedule.recurs(retries.times)
  ])

/** Only the process's own outcome is worth another attempt; a malformed or missing program is not. */
const isRetryable = (error: CommandError): boolean => error._tag === "CommandFailed" || error._tag === "CommandTimedOut"

/** Why a command did not succeed, in a few words for events and logs (never env values). */
export const describeError = (error: CommandError): string => {
  switch (error._tag) {
    case "CommandInvalid":
      return `invalid ${error.field}: ${error.reason}`
    case "CommandNotFound":
      return `program not found: ${error.program}`
    case "CommandSpawnFailed":
      return `could not start ${error.program}: ${error.reason}`
    case "CommandTimedOut":
      return `timed out after ${error.timeoutMs} ms`
    case "CommandFailed":
      return error.result.signal !== null
        ? `killed by ${error.result.signal}`
        : `exit code ${error.result.exitCode ?? "unknown"}`
  }
}

/** What a runner publishes about a command: the four `command.*` events, from one place. */
interface Reporter {
  readonly started: (command: ValidCommand, attempt: number) => Effect.Effect<void>
  readonly outcome: (
    id: string,
    outcome: CommandResult | CommandError,
    attempts: number,
    durationMs: number
  ) => Effect.Effect<void>
  /** Ended without an outcome of its own: interrupted, or its stream left early. */
  readonly ended: (id: string, reason: string, attempts: number, durationMs: number) => Effect.Effect<void>
}

const reporter = (bus: EventBus.EventBus["Service"], runner: string): Reporter => {
  const emit = <T extends CommandEvent.CommandEvent["type"]>(type: T, entityId: string, data: TestbedEvent.DataOf<T>) =>
    Effect.asVoid(bus.emit({ type, entityId, data }))

  const emitStarted = (command: ValidCommand, number: number) => {
    const { program, args } = Command.argv(command)
    return emit("command.started", command.id, {
      program,
      args,
      ...(command.description !== undefined ? { description: command.description } : {}),
      runner,
      attempt: number
    })
  }

  const emitOutcome = (id: string, outcome: CommandResult | CommandError, attempts: number, durationMs: number) => {
    if (!("_tag" in outcome)) {
      return emit("command.completed", id, {
        exitCode: outcome.exitCode ?? 0,
        durationMs,
        attempts,
        truncated: outcome.truncated
      })
    }
    if (outcome._tag === "CommandTimedOut") {
      return emit("command.timed_out", id, { timeoutMs: outcome.timeoutMs, durationMs, attempts })
    }
    const result = outcome._tag === "CommandFailed" ? outcome.result : undefined
    return emit("command.failed", id, {
      reason: describeError(outcome),
      exitCode: result?.exitCode ?? null,
      signal: result?.signal ?? null,
      durationMs,
      attempts
    })
  }

  const emitEnded = (id: string, reason: string, attempts: number, durationMs: number) =>
    emit("command.failed", id, { reason, exitCode: null, signal: null, durationMs, attempts })

  return { started: emitStarted, outcome: emitOutcome, ended: emitEnded }
}

// The result of a run spans every attempt, timed on this side's clock; output and exit status are the last attempt's.
const spanned = (result: CommandResult, startedAt: number, endedAt: number, attempts: number): CommandResult => ({
  ...result,
  startedAt: new Date(startedAt).toISOString(),
  endedAt: new Date(endedAt).toISOString(),
  durationMs: Math.max(0, endedAt - startedAt),
  attempts
})

/** The error of a run, its result (if it has one) spanning every attempt. */
const spannedError = (error: CommandError, startedAt: number, endedAt: number, attempts: number): CommandError =>
  error._tag === "CommandFailed"
    ? new CommandFailed({ commandId: error.commandId, result: spanned(error.result, startedAt, endedAt, attempts) })
    : error._tag === "CommandTimedOut"
      ? new CommandTimedOut({
          commandId: error.commandId,
          timeoutMs: error.timeoutMs,
          result: spanned(error.result, startedAt, endedAt, attempts)
        })
      : error

/** Runs the command to completion with its retries, reporting each attempt and the outcome. */
const runWithRetries = Effect.fn("CommandRunner.run")(function* (
  attempt: Attempt,
  report: Reporter,
  input: Command.Command
) {
  const startedAt = yield* Clock.currentTimeMillis
  let attempts = 0
  const elapsed = Effect.map(Clock.currentTimeMillis, (now) => Math.max(0, now - startedAt))
  const fail = (error: CommandError) =>
    Effect.flatMap(elapsed, (ms) =>
      Effect.andThen(report.outcome(error.commandId, error, attempts, ms), Effect.fail(error))
    )
  const command = yield* Command.validate(input).pipe(Effect.catch(fail))
  const once = Effect.suspend(() => {
    attempts++
    return Effect.andThen(report.started(command, attempts), attempt.run(command))
  })
  const retried =
    command.retries === undefined || command.retries.times === 0
      ? once
      : Effect.retry(once, { schedule: retrySchedule(command.retries), while: isRetryable })
  return yield* retried.pipe(
    Effect.matchEffect({
      onSuccess: (result) =>
        Effect.flatMap(Clock.currentTimeMillis, (endedAt) => {
          const final = spanned(result, startedAt, endedAt, attempts)
          return Effect.as(report.outcome(command.id, final, attempts, final.durationMs), final)
        }),
      onFailure: (error) =>
        Effect.flatMap(Clock.currentTimeMillis, (endedAt) => fail(spannedError(error, startedAt, endedAt, attempts)))
    }),
    Effect.onInterrupt(() => Effect.flatMap(elapsed, (ms) => report.ended(command.id, "interrupted", attempts, ms)))
  )
})

/** One attempt as a stream, reported like a run; a consumer that stops reading early ends the command. */
const streamOnce = (
  attempt: Attempt,
  report: Reporter,
  input: Command.Command
): Stream.Stream<OutputChunk, CommandError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      const elapsed = Effect.map(Clock.currentTimeMillis, (now) => Math.max(0, now - startedAt))
      const failed = (error: CommandError, attempts: number) =>
        Effect.flatMap(elapsed, (ms) => report.outcome(error.commandId, error, attempts, ms))
      const command = yield* Command.validate(input).pipe(Effect.tapError((error) => failed(error, 0)))
      yield* report.started(command, 1)
      let settled = false
      return attempt.stream(command).pipe(
        Stream.tap((chunk) => {
          if (chunk._tag !== "Exit") return Effect.void
          settled = true
          return report.outcome(command.id, chunk.result, 1, chunk.result.durationMs)
        }),
        Stream.tapError((error) => {
          settled = true
          return failed(error, 1)
        }),
        // The run is still reported as ended.
        Stream.ensuring(
          Effect.suspend(() =>
            settled
              ? Effect.void
              : Effect.flatMap(elapsed, (durationMs) =>
                  report.ended(command.id, "stopped before the end", 1, durationMs)
                )
          )
        )
      )
    })
  )

/** Builds the service from a runner's single attempt; events go to the `EventBus` in context. */
export const make = (attempt: Attempt): Effect.Effect<CommandRunner["Service"], never, EventBus.EventBus> =>
  Effect.map(EventBus.EventBus, (bus) => {
    const report = reporter(bus, attempt.name)
    return CommandRunner.of({
      name: attempt.name,
      run: (command) => runWithRetries(attempt, report, command),
      stream: (command) => streamOnce(attempt, report, command)
    })
  })
