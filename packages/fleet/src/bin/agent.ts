// A fleet agent as a process: see AgentProcess (arguments, output, exit codes). For harnesses that start agents as
// commands: `node <this file> --broker URL --id ID (--secret-file FILE | --compat)`. SIGINT/SIGTERM interrupt it:
// its running commands end and are reported before it exits.
// Deep imports: the platform package's index loads every Node module it has, which an agent's startup would pay.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { LocalRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { Effect, Layer } from "effect"
import { main } from "../AgentProcess.ts"

main(process.argv.slice(2)).pipe(
  Effect.flatMap((code) => Effect.sync(() => process.exit(code))),
  Effect.provide(
    LocalRunner.layer.pipe(Layer.provideMerge(EventBus.EventBus.layer), Layer.provideMerge(NodeServices.layer))
  ),
  NodeRuntime.runMain
)
