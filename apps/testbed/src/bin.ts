#!/usr/bin/env node
// Entry point of the `testbed` command: runs the command tree on Node with the platform services. A failure ends
// the process with the exit code its error carries, said in one line on stderr (`--debug`: with the whole cause).
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import { run } from "./Cli.ts"
import { debugRequested, exitWith } from "./ExitCode.ts"

const argv = process.argv.slice(2)

run(argv).pipe(
  Effect.catchCause(exitWith(debugRequested(argv))),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
