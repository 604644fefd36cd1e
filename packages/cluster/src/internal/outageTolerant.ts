/**
 * Effect Cluster's storage, made to ride out a short Postgres outage (a restart, a failover) instead of failing
 * the attempts in flight:
 * - Every message-storage operation that fails with `PersistenceError` (the connection is gone) is tried again with
 *   backoff for at most the outage budget (the lock expiry). Without it, the engine gives a reply write 4 tries
 *   200 ms apart, then treats the entity as broken and runs the request again from the start (the attempt ran
 *   twice), and a coordinator's acknowledgement of a chunk fails its stream.
 * - A reply write tried again after a commit whose answer was lost would hit the reply's primary key: before each
 *   retry it checks whether the reply is stored already.
 * - A shard-lock refresh that cannot reach Postgres (fails, or has no answer within half a refresh interval) answers "still held" while the lease of the last refresh that
 *   did reach it runs (started at t, it holds until t + lock expiry: no other runner can take a lock row before
 *   it expires by Postgres's clock), less one refresh interval of margin. Without it, the engine marks its locks
 *   unhealthy on the first failed refresh and interrupts every entity, and the attempts run again once Postgres is
 *   back. Past the lease the failure goes through, and the engine's own handling (a re-run elsewhere) applies.
 * - A refresh that is only slow (a loaded machine) is left to finish, not interrupted: the SQL storage answers an
 *   interrupted lock operation by replacing its lock connection (a new Postgres session), so the next refresh
 *   waited for that and was slower still, until the lease ran out on a runner that was merely starved of CPU.
 */
import { Clock, Duration, Effect, Fiber, Layer, Schedule, type Scope } from "effect"
import { MessageStorage, RunnerStorage } from "effect/cluster"

const isPersistence = (error: { readonly _tag: string }) => error._tag === "PersistenceError"

/** Backoff from 100 ms to 1 s between tries, for at most `budget`. */
const schedule = (budget: Duration.Duration) =>
  Schedule.min([Schedule.exponential("100 millis", 1.5), Schedule.spaced("1 second")]).pipe(
    Schedule.upTo({ duration: budget })
  )

/** Tries `effect` again while it fails with `PersistenceError`, for at most `budget`. */
export const retrying =
  (budget: Duration.Duration) =>
  <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.retry(effect, { while: (error: E) => isPersistence(error), schedule: schedule(budget) })

/** Tries `effect` again while it fails with `SqlError` (our own queries, Postgres away), for at most `budget`. */
export const retryingSql =
  (budget: Duration.Duration) =>
  <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.retry(effect, { while: (error: E) => error._tag === "SqlError", schedule: schedule(budget) })

/** The message storage of `inner`, every Postgres operation retried through an outage of at most `budget`. */
export const messageStorage = (
  inner: MessageStorage.MessageStorage["Service"],
  budget: Duration.Duration
): MessageStorage.MessageStorage["Service"] => {
  const retry = retrying(budget)
  const wrapped: MessageStorage.MessageStorage["Service"] = {
    ...inner,
    saveRequest: (envelope) => retry(inner.saveRequest(envelope)),
    saveEnvelope: (envelope) => retry(inner.saveEnvelope(envelope)),
    saveReply: (reply) => saveReplyOnce(inner, reply, budget),
    clearReplies: (requestId, options) => retry(inner.clearReplies(requestId, options)),
    repliesFor: (requests) => retry(inner.repliesFor(requests)),
    repliesForUnfiltered: (requestIds) => retry(inner.repliesForUnfiltered(requestIds)),
    requestIdForPrimaryKey: (options) => retry(inner.requestIdForPrimaryKey(options)),
    // The messages read here answer through `this.saveReply`: the retried one.
    unprocessedMessages: (shardIds, options) => retry(inner.unprocessedMessages.call(wrapped, shardIds, options)),
    unprocessedMessagesById: (messageIds) => retry(inner.unprocessedMessagesById.call(wrapped, messageIds)),
    resetShards: (shardIds) => retry(inner.resetShards(shardIds)),
    resetAddress: (address) => retry(inner.resetAddress(address)),
    resetRequests: (requestIds) => retry(inner.resetRequests(requestIds)),
    resetAddresses: (addresses) => retry(inner.resetAddresses(addresses)),
    clearAddress: (address) => retry(inner.clearAddress(address))
  }
  return wrapped
}

/** A reply written once: a retry first looks whether the previous try committed after all. */
const saveReplyOnce = <R extends Parameters<MessageStorage.MessageStorage["Service"]["saveReply"]>[0]>(
  inner: MessageStorage.MessageStorage["Service"],
  reply: R,
  budget: Duration.Duration
) => {
  const stored = inner
    .repliesForUnfiltered([reply.reply.requestId])
    .pipe(Effect.map((replies) => replies.some((candidate) => String(candidate.id) === String(reply.reply.id))))
  const attempt = Effect.catchIf(inner.saveReply(reply), isPersistence, (error) =>
    Effect.flatMap(
      Effect.orElseSucceed(stored, () => false),
      (done) => (done ? Effect.void : Effect.fail(error))
    )
  )
  return retrying(budget)(attempt)
}

/**
 * The runner storage of `inner`, whose lock refreshes answer from the lease of the last refresh that reached
 * Postgres while it cannot be reached.
 */
export const runnerStorage = (
  inner: RunnerStorage.RunnerStorage["Service"],
  timing: { readonly lockExpiry: Duration.Duration; readonly refreshInterval: Duration.Duration },
  scope: Scope.Scope
): RunnerStorage.RunnerStorage["Service"] => {
  // Local time at which the last refresh that reached Postgres was sent.
  let leaseFrom: number | undefined
  const lease = Duration.toMillis(timing.lockExpiry) - Duration.toMillis(timing.refreshInterval)
  // The engine gives a refresh one interval (then calls the locks unhealthy); a refresh waiting on a connection
  // to a Postgres that is away does not fail, it hangs: answer from the lease well before that.
  const patience = Duration.millis(Duration.toMillis(timing.refreshInterval) / 2)
  const refresh = Effect.fn("OutageTolerant.refresh")(function* (
    address: Parameters<RunnerStorage.RunnerStorage["Service"]["refresh"]>[0],
    shardIds: Parameters<RunnerStorage.RunnerStorage["Service"]["refresh"]>[1]
  ) {
    const shards = [...shardIds]
    const sent = yield* Clock.currentTimeMillis
    // Forked into the storage's scope, so that giving up waiting does not interrupt it (the SQL storage bounds it by
    // one refresh interval); when it lands late it still renews the lease.
    const inFlight = yield* inner.refresh(address, shards).pipe(
      Effect.tap(() =>
        Effect.sync(() => {
          if (leaseFrom === undefined || sent > leaseFrom) leaseFrom = sent
        })
      ),
      Effect.forkIn(scope)
    )
    const reached = yield* Fiber.join(inFlight).pipe(Effect.timeoutOption(patience), Effect.result)
    if (reached._tag === "Success" && reached.success._tag === "Some") return reached.success.value
    const now = yield* Clock.currentTimeMillis
    if (leaseFrom !== undefined && now - leaseFrom < lease) {
      yield* Effect.logWarning(
        `shard lock refresh ${reached._tag === "Failure" ? "failed" : "slow"}: answered from the lease renewed ${now - leaseFrom} ms ago`
      )
      return shards
    }
    if (reached._tag === "Failure") return yield* Effect.fail(reached.failure)
    return yield* Fiber.join(inFlight)
  })
  return { ...inner, refresh }
}

/** Replaces the cluster storage services provided by `storage` with their outage-tolerant forms. */
export const layer = (timing: {
  readonly lockExpiry: Duration.Duration
  readonly refreshInterval: Duration.Duration
}) =>
  Layer.mergeAll(
    Layer.effect(
      MessageStorage.MessageStorage,
      Effect.gen(function* () {
        return messageStorage(yield* MessageStorage.MessageStorage, timing.lockExpiry)
      })
    ),
    Layer.effect(
      RunnerStorage.RunnerStorage,
      Effect.gen(function* () {
        return runnerStorage(yield* RunnerStorage.RunnerStorage, timing, yield* Effect.scope)
      })
    )
  )
