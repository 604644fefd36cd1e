/**
 * The commander (the original's `commander.py`): publishes one command through the operator's command
 * loader topic and collects the answers as they arrive, until enough came or the time is up.
 */
import { Ids } from "@testbed/events"
import { Clock, Duration, Effect, Option, Queue, Result, type Scope } from "effect"
import * as MqttConnection from "./MqttConnection.ts"
import * as Protocol from "./Protocol.ts"
import * as Security from "./Security.ts"

export interface SendOptions {
  readonly connection: Omit<MqttConnection.ConnectOptions, "clientId" | "will">
  readonly topics?: Protocol.Topics
  /** The original commander's `jsonify`; plain mode sends `id|command` and cannot be signed. */
  readonly mode?: Protocol.Mode
  readonly signing: Security.Signing
  /** An agent id, or `all`. */
  readonly to: string
  readonly command: string
  /** Default 30 seconds. */
  readonly timeout?: Duration.Input
  /** Stop after this many answers; default 1 for one agent, none (wait the whole timeout) for `all`. */
  readonly expect?: number
  readonly onResponse?: (response: Protocol.ResponseMessage) => Effect.Effect<void>
}

export interface SendResult {
  readonly commandId: string
  readonly responses: ReadonlyArray<Protocol.ResponseMessage>
  /** True when the expected number of answers arrived before the timeout. */
  readonly complete: boolean
}

export const send = Effect.fn("Commander.send")(function* (
  options: SendOptions
): Effect.fn.Return<SendResult, MqttConnection.ConnectFailed | MqttConnection.PublishFailed, Scope.Scope> {
  if (options.signing._tag === "Compat") yield* Effect.logWarning(`commander: ${Security.compatWarning}`)
  const topics = options.topics ?? Protocol.defaultTopics
  const mode = options.mode ?? "json"
  const to = options.to.toLowerCase() === "all" ? "all" : options.to
  const expect = options.expect ?? (to === "all" ? undefined : 1)
  const connection = yield* MqttConnection.make({
    ...options.connection,
    clientId: `testbed-commander-${yield* Ids.token(8)}`
  })
  yield* connection.awaitConnected("10 seconds")
  // Subscribe first, so an answer faster than our publish is not missed.
  yield* connection.subscribe([topics.response], 1)
  const now = yield* Clock.currentTimeMillis
  const commandId = `cmd-${now.toString(36)}-${yield* Ids.token(6)}`
  const message = Security.signLoader(options.signing, { client_id: to, command: options.command }, commandId, now)
  yield* connection.publish(topics.commandLoader, Protocol.encodeCommand(mode, message), 1)
  const responses: Array<Protocol.ResponseMessage> = []
  // Signed: only an answer signed for one of our ids (the operator sends ours as `<id>/<agent>`). Compat: old
  // agents send no id, so an answer to the same command text counts too.
  const mine = (r: Protocol.ResponseMessage) =>
    r.command_id?.startsWith(`${commandId}/`) === true ||
    (options.signing._tag === "Compat" && r.command === options.command)
  let refused = 0
  const collect = Effect.gen(function* () {
    while (expect === undefined || responses.length < expect) {
      const inbound = yield* Queue.take(connection.inbound)
      if (inbound._tag !== "Message" || inbound.topic !== topics.response) continue
      const decoded = Protocol.decodeResponse(inbound.payload)
      if (Option.isNone(decoded) || !mine(decoded.value)) continue
      const verdict = Security.verifyResponse(options.signing, decoded.value)
      if (Result.isFailure(verdict)) {
        refused++
        if (refused <= 5 || refused % 1000 === 0) {
          yield* Effect.logWarning(`commander: ignored a ${verdict.failure} answer (${refused} so far)`)
        }
        continue
      }
      responses.push(decoded.value)
      if (options.onResponse) yield* options.onResponse(decoded.value)
    }
  })
  const finished = yield* collect.pipe(Effect.timeoutOption(Duration.fromInputUnsafe(options.timeout ?? "30 seconds")))
  return { commandId, responses, complete: Option.isSome(finished) && expect !== undefined }
})

/**
 * A send succeeded when answers came (as many as `expect`, when one was given) and every one of them succeeded;
 * an old agent's answer carries no status and counts as succeeded, as the original counts it.
 */
export const succeeded = (result: SendResult, expectGiven: boolean): boolean =>
  result.responses.length > 0 &&
  (result.complete || !expectGiven) &&
  result.responses.every((r) => (r.status ?? "succeeded") === "succeeded")

/** The result as one JSON document (`testbed fleet send --json`), signatures left out. */
export const toJson = (result: SendResult, to: string, expectGiven: boolean) => ({
  succeeded: succeeded(result, expectGiven),
  to,
  commandId: result.commandId,
  complete: result.complete,
  responses: result.responses.map(Protocol.withoutSignature)
})

/** Formats an answer like the original commander prints it. */
export const formatResponse = (response: Protocol.ResponseMessage): string =>
  `Received feedback:\n${JSON.stringify(response, null, 2)}`
