/**
 * An agent as a process of its own, for harnesses (and this package's tests) that start agents as commands without
 * the `testbed` CLI: `node <@testbed/fleet>/src/bin/agent.ts FLAGS`, with the CLI's `fleet agent` flags that a
 * harness needs:
 *
 *   agent [--config FILE] [--broker URL] [--id ID] [--username NAME] [--password-file FILE] [--ca-file FILE]
 *         [--cert-file FILE] [--key-file FILE] [--insecure] [--secret-file FILE] [--compat]
 *         [--allow PATTERN]... [--pass-env NAME]...
 *
 * Config file, environment (`MQTT_BROKER`, `CLIENT_ID`, `MQTT_PASSWORD`, `TESTBED_FLEET_SECRET`) and flags are
 * resolved by `Setup.resolve`, exactly as for `testbed fleet agent`. Prints `agent ID: connecting to URL`, then
 * runs until SIGINT/SIGTERM. Fails with the error's own exit code and the reason on stderr: 2 for wrong arguments,
 * config or credentials (the broker refused them). An unreachable broker is retried with backoff, as by the CLI.
 */
import { ExitCode, ProcessArguments } from "@testbed/events"
import { Console, Effect, Schema } from "effect"
import * as Agent from "./Agent.ts"
import * as MqttConnection from "./MqttConnection.ts"
import * as Setup from "./Setup.ts"

const optional = Schema.optionalKey(Schema.String)
const switchFlag = Schema.optionalKey(Schema.Boolean)
const repeated = Schema.optionalKey(Schema.Array(Schema.String))

/** The command line, decoded: each flag once, except the repeatable ones. */
export const Arguments = Schema.Struct({
  config: optional,
  broker: optional,
  id: optional,
  username: optional,
  "password-file": optional,
  "ca-file": optional,
  "cert-file": optional,
  "key-file": optional,
  insecure: switchFlag,
  "secret-file": optional,
  compat: switchFlag,
  allow: repeated,
  "pass-env": repeated
})
export type Arguments = typeof Arguments.Type

export const ArgumentsInvalid = ProcessArguments.ArgumentsInvalid
export type ArgumentsInvalid = ProcessArguments.ArgumentsInvalid

const shape: ProcessArguments.Shape = {
  switches: new Set(["insecure", "compat"]),
  repeatable: new Set(["allow", "pass-env"])
}

export const parse = Effect.fn("AgentProcess.parse")(function* (argv: ReadonlyArray<string>) {
  return yield* ProcessArguments.decode(Arguments, argv, shape)
})

const overrides = (args: Arguments): Setup.Overrides => ({
  config: args.config,
  broker: args.broker,
  username: args.username,
  passwordFile: args["password-file"],
  caFile: args["ca-file"],
  certFile: args["cert-file"],
  keyFile: args["key-file"],
  insecure: args.insecure,
  secretFile: args["secret-file"],
  compat: args.compat
})

/** Resolves the setup as `testbed fleet agent` does, then runs the agent until interrupted. */
export const run = Effect.fn("AgentProcess.run")(function* (args: Arguments) {
  const resolved = yield* Setup.resolve(overrides(args), "agent")
  const { id, ...options } = Setup.agentOptions(resolved, { id: args.id, allow: args.allow, passEnv: args["pass-env"] })
  yield* Console.log(`agent ${id}: connecting to ${MqttConnection.safeUrl(resolved.connection.url)}`)
  return yield* Agent.run(options)
})

/** The whole process: runs until interrupted, or its exit code (the error's own) with the reason on stderr. */
export const main = (argv: ReadonlyArray<string>) =>
  Effect.flatMap(parse(argv), run).pipe(
    Effect.catch((error) => Effect.as(Console.error(`fleet agent: ${error.message}`), ExitCode.ofError(error))),
    Effect.withSpan("AgentProcess.main")
  )
