/**
 * `testbed fleet broker|agent|operator|send`: the MQTT system governor, compatible with the old tools'
 * config.ini and wire protocol. Each command resolves flags, config and environment, then calls the library.
 */
import { LocalRunner } from "@testbed/commands"
import { EventBus, ExitCode } from "@testbed/events"
import {
  Agent,
  Broker,
  Commander,
  Config,
  FleetMetrics,
  MqttConnection,
  RunSummary,
  Session,
  Setup
} from "@testbed/fleet"
import { Console, Effect, FileSystem, Layer, Logger, Option, Redacted, Stdio, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ExitWith } from "../ExitCode.ts"
import * as TimeSpanFlag from "../TimeSpanFlag.ts"
import { metricsLayer, metricsPort } from "./metricsFlag.ts"

const optionalString = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

const connectionFlags = {
  config: optionalString("config", "The old config.ini (or a .yaml with the same sections)"),
  broker: optionalString(
    "broker",
    "Broker host or URL (mqtt://, mqtts://); default from the config, MQTT_BROKER, or localhost:1883"
  ),
  username: optionalString("username", "MQTT user name"),
  passwordFile: optionalString("password-file", "File holding the MQTT password (or set MQTT_PASSWORD)"),
  caFile: optionalString("ca-file", "CA certificate for a TLS broker"),
  certFile: optionalString("cert-file", "Client certificate for TLS"),
  keyFile: optionalString("key-file", "Client key for TLS"),
  insecure: Flag.Boolean("insecure").pipe(
    Flag.withDefault(false),
    Flag.withDescription("Accept a TLS broker certificate that does not verify")
  ),
  secretFile: optionalString("secret-file", "File holding the shared signing secret (or set TESTBED_FLEET_SECRET)"),
  compat: Flag.Boolean("compat").pipe(
    Flag.withDefault(false),
    Flag.withDescription("Talk the old unsigned protocol: anyone on the broker can run commands")
  )
}

interface ConnectionFlags {
  readonly config: Option.Option<string>
  readonly broker: Option.Option<string>
  readonly username: Option.Option<string>
  readonly passwordFile: Option.Option<string>
  readonly caFile: Option.Option<string>
  readonly certFile: Option.Option<string>
  readonly keyFile: Option.Option<string>
  readonly insecure: boolean
  readonly secretFile: Option.Option<string>
  readonly compat: boolean
}

const overrides = (flags: ConnectionFlags): Setup.Overrides => ({
  config: Option.getOrUndefined(flags.config),
  broker: Option.getOrUndefined(flags.broker),
  username: Option.getOrUndefined(flags.username),
  passwordFile: Option.getOrUndefined(flags.passwordFile),
  caFile: Option.getOrUndefined(flags.caFile),
  certFile: Option.getOrUndefined(flags.certFile),
  keyFile: Option.getOrUndefined(flags.keyFile),
  insecure: flags.insecure,
  secretFile: Option.getOrUndefined(flags.secretFile),
  compat: flags.compat ? true : undefined
})

const jsonFlag = Flag.Boolean("json").pipe(
  Flag.withDefault(false),
  Flag.withDescription("Print the final result as one JSON document on stdout; progress goes to stderr")
)

/** With `--json`, stdout carries the one JSON document only: everything a person reads goes to stderr. */
const printerFor = (json: boolean) => (line: string) => (json ? Console.error(line) : Console.log(line))

/** Logs (warnings, registrations, reconnects) on stderr too when stdout carries JSON. */
const logsFor =
  (json: boolean) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    json ? Effect.provideService(effect, Logger.LogToStderr, true) : effect

const runnerLayer = LocalRunner.layer.pipe(Layer.provideMerge(EventBus.EventBus.layer))

const broker = Command.make(
  "broker",
  {
    host: Flag.String("host").pipe(Flag.withDefault("127.0.0.1"), Flag.withDescription("Address to listen on")),
    port: Flag.Int("port").pipe(
      Flag.withDescription("Port (0 picks a free one; default: the config's [mqtt] port, or 1883)"),
      Flag.optional
    ),
    config: optionalString("config", "The old config.ini (its [mqtt] port and user name are used)"),
    username: optionalString("username", "Require this MQTT user name"),
    passwordFile: optionalString("password-file", "File holding the required MQTT password"),
    tlsCert: optionalString("tls-cert", "PEM server certificate: also listen for MQTT over TLS (mqtts://)"),
    tlsKey: optionalString("tls-key", "PEM key of the TLS server certificate"),
    tlsPort: Flag.Int("tls-port").pipe(
      Flag.withDescription("Port of the TLS listener (0 picks a free one; default 8883)"),
      Flag.optional
    )
  },
  Effect.fn(function* ({ config, host, passwordFile, port: portFlag, tlsCert, tlsKey, tlsPort, username: userFlag }) {
    if (Option.isSome(tlsCert) !== Option.isSome(tlsKey)) {
      return yield* new Config.ConfigInvalid({ path: "(flags)", reason: "--tls-cert and --tls-key go together" })
    }
    const file = Option.isSome(config) ? yield* Config.load(config.value) : yield* Config.defaults
    const port = Option.getOrElse(portFlag, () => file.broker.port)
    const username = Option.orElse(userFlag, () => Option.fromNullishOr(file.broker.username))
    const password = Option.isSome(passwordFile)
      ? Option.some(Redacted.make((yield* (yield* FileSystem.FileSystem).readFileString(passwordFile.value)).trim()))
      : Option.none()
    const started = yield* Broker.embedded({
      host,
      port,
      ...(Option.isSome(username) ? { username: username.value } : {}),
      ...(Option.isSome(password) ? { password: password.value } : {}),
      ...(Option.isSome(tlsCert) && Option.isSome(tlsKey)
        ? {
            tls: {
              certFile: tlsCert.value,
              keyFile: tlsKey.value,
              ...(Option.isSome(tlsPort) ? { port: tlsPort.value } : {})
            }
          }
        : {})
    })
    yield* Console.log(`MQTT broker listening on ${started.url}`)
    if (started.tlsUrl !== undefined) yield* Console.log(`MQTT broker listening on ${started.tlsUrl} (TLS)`)
    return yield* Effect.never
  }, Effect.scoped)
).pipe(Command.withDescription("Run the embedded MQTT broker (Aedes) until interrupted"))

const agent = Command.make(
  "agent",
  {
    ...connectionFlags,
    id: optionalString("id", "Agent id (default: CLIENT_ID, the config's [agent] id, or client1)"),
    allow: Flag.String("allow").pipe(
      Flag.withDescription("Allow only matching commands: exact text, a glob with *, or /regex/ (repeatable)"),
      Flag.atLeast(0)
    ),
    commandTimeout: TimeSpanFlag.optional("command-timeout", "Longest any command may run"),
    passEnv: Flag.String("pass-env").pipe(
      Flag.withDescription("Pass only these variables (NAME or a * glob) to commands (repeatable); secrets never pass"),
      Flag.atLeast(0)
    )
  },
  Effect.fn(function* (flags) {
    const resolved = yield* Setup.resolve(overrides(flags), "agent")
    const { id, ...options } = Setup.agentOptions(resolved, {
      id: Option.getOrUndefined(flags.id),
      allow: flags.allow,
      passEnv: flags.passEnv,
      commandTimeout: Option.getOrUndefined(flags.commandTimeout)
    })
    yield* Console.log(`agent ${id}: connecting to ${MqttConnection.safeUrl(resolved.connection.url)}`)
    return yield* Agent.run(options).pipe(Effect.provide(runnerLayer))
  })
).pipe(Command.withDescription("Run an agent: register, run the commands addressed to it, answer (Ctrl-C stops it)"))

/** The operator's flags: the connection's, then what the run does and how it reports. */
const operatorFlags = {
  ...connectionFlags,
  expect: Flag.Int("expect").pipe(Flag.withDescription("Start as soon as this many agents registered"), Flag.optional),
  registrationTimeout: TimeSpanFlag.optional("registration-timeout", "Registration window after the first agent"),
  stepTimeout: TimeSpanFlag.optional("step-timeout", "Longest a step may take"),
  lostGrace: TimeSpanFlag.optional(
    "lost-grace",
    "How long an agent reported gone may take to come back (default 10 s)"
  ),
  onFailure: Flag.Literals("on-failure", ["stop", "continue"]).pipe(
    Flag.withDescription("stop: a failed step ends that agent's pipeline; continue: go on"),
    Flag.optional
  ),
  abortAbove: Flag.Int("abort-above").pipe(
    Flag.withDescription("Abort everything once more than this percentage of agents failed"),
    Flag.optional
  ),
  pipeline: Flag.String("pipeline").pipe(
    Flag.withDescription('A pipeline "cmd1; cmd2" replacing the config\'s (repeatable)'),
    Flag.atLeast(0)
  ),
  feedbackFile: optionalString("feedback-file", "Append every answer to this JSONL file"),
  noFeedback: Flag.Boolean("no-feedback").pipe(Flag.withDefault(false), Flag.withDescription("Write no feedback file")),
  noRealtime: Flag.Boolean("no-realtime").pipe(
    Flag.withDefault(false),
    Flag.withDescription("Exit after the pipelines instead of reading stdin")
  ),
  metricsPort,
  json: jsonFlag
}

const operator = Command.make(
  "operator",
  operatorFlags,
  Effect.fn(function* (flags) {
    const resolved = yield* Setup.resolve(overrides(flags), "operator")
    const stdio = yield* Stdio.Stdio
    const { registrationTimeout, stepTimeout, lostGrace } = flags
    const summary = yield* Session.run({
      resolved,
      ...(flags.pipeline.length > 0
        ? {
            pipelines: flags.pipeline.map((text, i) => ({
              name: `pipeline${i + 1}`,
              steps: Config.splitPipeline(text)
            }))
          }
        : {}),
      ...(Option.isSome(flags.expect) ? { expectAgents: flags.expect.value } : {}),
      ...(Option.isSome(registrationTimeout) ? { registrationTimeout: registrationTimeout.value } : {}),
      ...(Option.isSome(stepTimeout) ? { stepTimeout: stepTimeout.value } : {}),
      ...(Option.isSome(lostGrace) ? { lostGrace: lostGrace.value } : {}),
      ...(Option.isSome(flags.onFailure) ? { onFailure: flags.onFailure.value } : {}),
      ...(Option.isSome(flags.abortAbove) ? { abortAbovePercent: flags.abortAbove.value } : {}),
      ...(flags.noFeedback
        ? { feedbackFile: null }
        : Option.isSome(flags.feedbackFile)
          ? { feedbackFile: flags.feedbackFile.value }
          : {}),
      realtime: !flags.noRealtime && resolved.config.operator.realtimeMode,
      // Stdio leaves stdin open, which keeps the process alive after `exit`: close it once the lines are done.
      lines: stdio.stdin.pipe(
        Stream.decodeText,
        Stream.splitLines,
        Stream.ensuring(Effect.sync(() => process.stdin.destroy()))
      ),
      print: printerFor(flags.json)
    }).pipe(
      Effect.scoped,
      Effect.provide(
        metricsLayer(flags.metricsPort, FleetMetrics.observer).pipe(Layer.provideMerge(EventBus.EventBus.layer))
      ),
      logsFor(flags.json)
    )
    yield* printerFor(flags.json)(RunSummary.format(summary))
    if (flags.json) yield* Console.log(JSON.stringify(RunSummary.toJson(summary)))
    if (!summary.succeeded)
      return yield* new ExitWith({ code: ExitCode.testFailed, message: "not every step succeeded" })
  })
).pipe(Command.withDescription("Wait for agents, run the pipelines on all of them, then take live commands"))

const send = Command.make(
  "send",
  {
    ...connectionFlags,
    to: Flag.String("to").pipe(Flag.withDescription("Agent id, or all")),
    expect: Flag.Int("expect").pipe(
      Flag.withDescription("Answers to wait for (default 1, or the timeout for all)"),
      Flag.optional
    ),
    timeout: TimeSpanFlag.optional("timeout", "How long to wait for answers (default 30 s)"),
    json: jsonFlag,
    command: Argument.String("command").pipe(
      Argument.variadic({ min: 1 }),
      Argument.withDescription("The command, after --")
    )
  },
  Effect.fn(function* (flags) {
    const resolved = yield* Setup.resolve(overrides(flags), "commander")
    const { timeout } = flags
    const result = yield* Commander.send({
      connection: resolved.connection,
      topics: resolved.config.topics,
      mode: resolved.config.commander.jsonify ? "json" : "plain",
      signing: resolved.signing,
      to: flags.to,
      command: flags.command.join(" "),
      ...(Option.isSome(flags.expect) ? { expect: flags.expect.value } : {}),
      ...(Option.isSome(timeout) ? { timeout: timeout.value } : {}),
      onResponse: (response) => printerFor(flags.json)(Session.describeResponse(response))
    }).pipe(Effect.scoped, logsFor(flags.json))
    const expectGiven = Option.isSome(flags.expect)
    if (flags.json) yield* Console.log(JSON.stringify(Commander.toJson(result, flags.to, expectGiven)))
    if (!Commander.succeeded(result, expectGiven)) {
      return yield* new ExitWith({
        code: ExitCode.testFailed,
        message: `${result.responses.length} answer(s), not all succeeded in time`
      })
    }
  })
).pipe(Command.withDescription("Send one command through the operator's command loader and print the answers"))

export const fleet = Command.make("fleet").pipe(
  Command.withDescription("Drive a fleet of agents over MQTT (compatible with the MQTT system governor)"),
  Command.withSubcommands([broker, agent, operator, send])
)
