/**
 * The agent (the original's `sut.py`): registers until acknowledged (and again whenever an operator asks who is
 * there), runs the commands addressed to it through the CommandRunner, and answers with the compatible payload
 * plus exit code, id and timing — signed, as are its running notices and its lost notice. It survives any
 * payload, refuses what its allowlist, signature policy or size limit forbids, de-duplicates by command id, runs
 * commands without testbed's secrets in their environment, and takes its running commands down with it however it
 * dies (the local runner's Watchdog guards every process group it starts, even against a SIGKILL of the agent).
 * Several agent ids may share one connection (one subscription, one process).
 */
import { randomBytes } from "node:crypto"
import { type Command, CommandRunner, ScriptedRunner } from "@testbed/commands"
import { EventBus, Ids } from "@testbed/events"
import { Context, Duration, Effect, Latch, Layer, type Redacted, type Scope } from "effect"
import * as CommandEnvironment from "./CommandEnvironment.ts"
import { type AgentState, makeAgentState } from "./internal/agentState.ts"
import type { Execution } from "./internal/execution.ts"
import * as MqttConnection from "./MqttConnection.ts"
import * as Protocol from "./Protocol.ts"
import * as Security from "./Security.ts"

export interface AgentOptions {
  /** The agent ids this connection serves (usually one; the benchmark hosts many). */
  readonly ids: ReadonlyArray<string>
  readonly connection: Omit<MqttConnection.ConnectOptions, "clientId" | "will">
  readonly topics?: Protocol.Topics
  /** Default json. Plain mode cannot carry signatures. */
  readonly mode?: Protocol.Mode
  /**
   * Also listen on each id's own command topic (`per-agent`, the default when signed) or on the shared one only
   * (`shared`, the default in compat mode). The shared topic is always listened on.
   */
  readonly commandTopics?: Protocol.CommandTopics
  readonly signing: Security.Signing
  /** Commands this agent may run; absent: any. */
  readonly allow?: ReadonlyArray<string>
  /** Upper bound for any command; a command's own `timeout` may only lower it. Default 10 minutes. */
  readonly commandTimeout?: Duration.Input
  /** The original resends its registration every 5 seconds until acknowledged. */
  readonly registrationInterval?: Duration.Input
  /** Bytes of stdout and of stderr sent back. Default 1 MiB. */
  readonly maxOutputBytes?: number
  /**
   * Longest command (UTF-8 bytes) the agent tries to run; longer ones are answered with the typed failure
   * `CommandTooLarge`. Default 131071: Linux's limit for one argument (`sh -c COMMAND`), less its NUL.
   */
  readonly maxCommandBytes?: number
  /** A command still running after this long is announced on the running topic. Default 100 ms. */
  readonly runningNoticeAfter?: Duration.Input
  /** How many command ids each agent remembers for de-duplication. Default 10000. */
  readonly memory?: number
  /** The environment commands start from; default this process's. Secrets are always removed from it. */
  readonly environment?: Readonly<Record<string, string | undefined>>
  /** Variables passed to commands (`*` globs); absent: all but the secrets. */
  readonly passEnv?: ReadonlyArray<string>
  /** More secret values to keep out of commands' environment (the signing secret and broker password always are). */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>>
  /** Builds the command run for a message; default `sh -c` with the timeout (a hook for in-process runners). */
  readonly toCommand?: (
    command: string,
    options: Omit<Command.Command, "program" | "args" | "shell">
  ) => Command.Command
}

export interface AgentStats {
  readonly received: number
  readonly malformed: number
  readonly ignored: number
  readonly executed: number
  readonly refused: number
  readonly duplicates: number
}

export interface Agent {
  readonly ids: ReadonlyArray<string>
  /** Unique per process, so two agents with one id never knock each other off the broker. */
  readonly mqttClientId: string
  /** Random per agent process: its registrations, acks and lost notice name it. */
  readonly session: string
  readonly stats: Effect.Effect<AgentStats>
  /** Waits until the operator has acknowledged every id. */
  readonly awaitAcknowledged: Effect.Effect<void>
}

const environmentOf = (options: AgentOptions): Record<string, string> =>
  CommandEnvironment.forCommands(options.environment ?? process.env, {
    pass: options.passEnv,
    secrets: [
      ...(options.signing._tag === "Signed" ? [options.signing.secret] : []),
      ...(options.connection.password !== undefined ? [options.connection.password] : []),
      ...(options.secrets ?? [])
    ]
  })

/**
 * Starts an agent in the Scope once its first connection attempt is over: fails at once with `AuthRefused` when
 * the broker refuses its credentials (or `BrokerUnreachable` for a certificate that does not verify); a broker
 * that is not up yet is retried in the background with a doubling backoff, every attempt logged. Closing the
 * Scope ends running commands and reports them as interrupted.
 */
export const start = Effect.fn("Agent.start")(function* (
  options: AgentOptions
): Effect.fn.Return<
  Agent,
  MqttConnection.ConnectFailed,
  Scope.Scope | CommandRunner.CommandRunner | EventBus.EventBus
> {
  const runner = yield* CommandRunner.CommandRunner
  const bus = yield* EventBus.EventBus
  if (options.signing._tag === "Compat") yield* Effect.logWarning(`agent: ${Security.compatWarning}`)
  const topics = options.topics ?? Protocol.defaultTopics
  const session = randomBytes(12).toString("hex")
  const mqttClientId = `testbed-agent-${options.ids[0] ?? "none"}-${yield* Ids.token(8)}`
  const connection = yield* MqttConnection.make({
    ...options.connection,
    clientId: mqttClientId,
    will: {
      topic: Protocol.lostTopic(topics),
      payload: Security.lostPayload(options.signing, options.ids, session),
      qos: 1
    }
  })
  yield* connection.awaitFirstAttempt
  const execution: Execution = {
    runner,
    mode: options.mode ?? "json",
    signing: options.signing,
    commandTimeout: Duration.fromInputUnsafe(options.commandTimeout ?? "10 minutes"),
    maxOutputBytes: options.maxOutputBytes ?? 1024 * 1024,
    env: environmentOf(options),
    ...(options.toCommand !== undefined ? { toCommand: options.toCommand } : {})
  }
  const allAcked = yield* Latch.make(false)
  const state: AgentState = yield* makeAgentState({ options, topics, session, connection, execution, bus, allAcked })
  yield* Effect.forkScoped(state.dispatch)
  yield* Effect.forkScoped(state.registerUntilAcknowledged(options.registrationInterval ?? "5 seconds"))
  return {
    ids: options.ids,
    mqttClientId,
    session,
    stats: state.stats,
    awaitAcknowledged: allAcked.await
  }
})

/** Runs an agent until interrupted (SIGINT/SIGTERM in the CLI). */
export const run = (
  options: AgentOptions
): Effect.Effect<never, MqttConnection.ConnectFailed, CommandRunner.CommandRunner | EventBus.EventBus> =>
  Effect.scoped(Effect.andThen(start(options), Effect.never))

/**
 * Where callers (the experiments' fleet step, a harness) get their agents from: the live `start` by default, so
 * nothing needs providing; `layerTest` swaps in scripted ones for their unit tests.
 */
export const Agents = Context.Reference<{
  readonly start: (
    options: AgentOptions
  ) => Effect.Effect<Agent, MqttConnection.ConnectFailed, Scope.Scope | CommandRunner.CommandRunner | EventBus.EventBus>
}>("@testbed/fleet/Agent/Agents", { defaultValue: () => ({ start }) })

/** The live agents (`start`: commands run by the caller's CommandRunner, a broker connection). */
export const layer = Layer.succeed(Agents, { start })

/**
 * Agents that run no process: the real protocol (registration, signatures, de-duplication, answers) with every
 * command's outcome taken from the script (`ScriptedRunner`: exit code, output, how long it runs on the Clock, so
 * TestClock decides when it ends), whatever runner the caller provides. Pair it with `MqttConnection.layerMemory`
 * for no broker either. `ScriptedRunner` says what the agents were asked to run; the scripted `CommandRunner` is
 * provided too, for callers that start agents themselves.
 */
export const layerTest = (
  script: ScriptedRunner.Script
): Layer.Layer<CommandRunner.CommandRunner | ScriptedRunner.ScriptedRunner, never, EventBus.EventBus> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const scripted = yield* ScriptedRunner.ScriptedRunner
      const scriptedStart = (options: AgentOptions) =>
        Effect.provideService(start(options), CommandRunner.CommandRunner, runner)
      return Context.make(Agents, { start: scriptedStart }).pipe(
        Context.add(ScriptedRunner.ScriptedRunner, scripted),
        Context.add(CommandRunner.CommandRunner, runner)
      )
    })
  ).pipe(Layer.provide(ScriptedRunner.layer(script)))
