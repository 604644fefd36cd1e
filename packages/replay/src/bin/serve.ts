// The replay server as a process: see ServeProcess (arguments, output, exit codes). Started by harnesses that run
// services as commands, e.g. the experiments `replay` service plugin: `node <this file> --script FILE --outcome FILE`.
// Deep imports: the platform package's index loads every Node module it has, which a service's startup would pay.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { main } from "../ServeProcess.ts"

main(process.argv.slice(2)).pipe(
  Effect.flatMap((code) => Effect.sync(() => process.exit(code))),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
