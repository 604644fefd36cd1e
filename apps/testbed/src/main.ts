/**
 * Runs the `testbed` command tree on Node with the platform services, and turns `ExitWith` into the process
 * exit code (its message printed once on stderr). NodeRuntime.runMain interrupts the command on SIGINT/SIGTERM,
 * so finalizers run (services stopped, reports written) and the exit code is 130.
 */
// Deep imports: the package's index loads every Node module it has (HTTP, sockets, workers…), 300 ms on startup.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Console, Effect } from "effect"
import { run } from "./Cli.ts"
import { ExitWith, expected } from "./ExitCode.ts"

export const main = (argv: ReadonlyArray<string>): void =>
  run(argv).pipe(
    Effect.mapError(expected),
    Effect.tapError((error) =>
      error instanceof ExitWith && error.message !== undefined && error.message !== ""
        ? Console.error(error.message)
        : Effect.void
    ),
    Effect.provide(NodeServices.layer),
    NodeRuntime.runMain
  )
