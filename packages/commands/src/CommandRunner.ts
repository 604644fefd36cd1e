/**
 * The service every part of testbed runs commands through. Runners differ in *where* a command runs
 * (this machine, a container, a fleet agent); each is a layer of this one service, so nothing here is local.
 */
import { Context, type Effect, type Stream } from "effect"
import type { Command } from "./Command.ts"
import type { CommandError } from "./CommandError.ts"
import type { CommandResult, OutputChunk } from "./CommandResult.ts"

export class CommandRunner extends Context.Service<
  CommandRunner,
  {
    /** Short name of where commands run, recorded in events: "local", "docker:<container>", "agent:<id>". */
    readonly name: string
    /**
     * Runs the command to completion (with its retries). Succeeds only with an exit code in
     * `successExitCodes`; interruption ends the whole process tree.
     */
    readonly run: (command: Command) => Effect.Effect<CommandResult, CommandError>
    /** Runs one attempt, emitting every output byte as it arrives and ending with the result. */
    readonly stream: (command: Command) => Stream.Stream<OutputChunk, CommandError>
  }
>()("@testbed/commands/CommandRunner") {}
