/**
 * Runs the `testbed` command tree on Node with the platform services. A failure ends the process with the exit code
 * its error carries, said in one line on stderr (`--debug`: with the whole cause); see ExitCode.ts.
 * NodeRuntime.runMain interrupts the command on SIGINT/SIGTERM, so finalizers run (services stopped, reports
 * written) and the exit code is 130.
 */
// Deep imports: the package's index loads every Node module it has (HTTP, sockets, workers…), 300 ms on startup.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { run } from "./Cli.ts"
import { debugRequested, exitWith } from "./ExitCode.ts"

export const main = (argv: ReadonlyArray<string>): void =>
  run(argv).pipe(
    Effect.catchCause(exitWith(debugRequested(argv))),
    Effect.provide(NodeServices.layer),
    NodeRuntime.runMain
  )
