#!/usr/bin/env node
// Entry point of the `testbed` command: runs the command tree on Node with the platform services.
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { run } from "./Cli.ts"
import { ExitWith, expected } from "./ExitCode.ts"

run(process.argv.slice(2)).pipe(
  Effect.mapError(expected),
  Effect.tapError((error) =>
    error instanceof ExitWith && error.message !== undefined && error.message !== ""
      ? Console.error(error.message)
      : Effect.void
  ),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
