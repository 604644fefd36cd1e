/**
 * Runs the `testbed` command tree on Node with the platform services, and turns `ExitWith` into the process
 * exit code (its message printed once on stderr). NodeRuntime.runMain interrupts the command on SIGINT/SIGTERM,
 * so finalizers run (services stopped, reports written) and the exit code is 130.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { run } from "./Cli.ts"
import { ExitWith } from "./ExitCode.ts"

export const main = (argv: ReadonlyArray<string>): void =>
  run(argv).pipe(
    Effect.tapError((error) =>
      error instanceof ExitWith && error.message !== undefined && error.message !== ""
        ? Console.error(error.message)
        : Effect.void
    ),
    Effect.provide(NodeServices.layer),
    NodeRuntime.runMain
  )
