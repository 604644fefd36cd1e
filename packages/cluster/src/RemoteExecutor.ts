/**
 * The coordinator's `TestCaseExecutor`: each attempt is sent to a runner whose labels include what the test
 * needs, as one persisted streaming request, and what the runner streams back is replayed here: its events go on
 * this run's bus (so `events.jsonl` and the reports are a local run's), its files land in this run's directory.
 * - No live runner has the labels: the attempt ends `unschedulable` with the labels in `missingLabels` at once (a
 *   request to a group nobody serves would wait forever).
 * - The runner dies mid-attempt: the engine re-runs the request on another runner of the group on the same
 *   stream; a second `Started` shows it, and the lost run is recorded as `test.finished` `runner_lost` with
 *   `willRetry` (an infrastructure retry, not a test retry: the re-run keeps the attempt's number).
 * - The group empties (its only runner died): after the lock expiry and 5 s the request is cancelled and deleted,
 *   and the attempt is dispatched again to whatever is eligible then.
 * Chunks whose signature does not check out are dropped: nothing unsigned reaches the record.
 */
import { createHash, randomBytes } from "node:crypto"
import { EventBus, ExitCode, TestbedEvent, TestEvent, WriteFailed } from "@testbed/events"
import { type Plan, type TestCase, TestCaseExecutor } from "@testbed/experiments"
import {
  Clock,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberSet,
  FileSystem,
  Option,
  Path,
  type PlatformError,
  Ref,
  Runtime,
  Schema,
  Scope,
  Stream
} from "effect"
import { EntityAddress, EntityId, EntityType, MessageStorage, Sharding } from "effect/cluster"
import { SqlClient } from "effect/sql"
import * as Protocol from "./AttemptProtocol.ts"
import * as Bundle from "./Bundle.ts"
import * as BundleSources from "./BundleSources.ts"
import { ClusterUnavailable } from "./ClusterUnavailable.ts"
import * as Envelope from "./Envelope.ts"
import * as Joining from "./internal/joining.ts"
import * as OutageTolerant from "./internal/outageTolerant.ts"
import * as Placement from "./internal/placement.ts"
import * as RecentLook from "./internal/recentLook.ts"
import * as Journal from "./Journal.ts"
import * as Labels from "./Labels.ts"
import * as Resume from "./Resume.ts"
import * as RunnerDirectory from "./RunnerDirectory.ts"

export interface Options {
  readonly runId: string
  /** The experiment file (absolute); runners get it and what it needs in a bundle (BundleSources.ts). */
  readonly file: string
  readonly pluginDirectories: ReadonlyArray<string>
  /** Directories never bundled (the run's output directory). */
  readonly exclude?: ReadonlyArray<string> | undefined
  /** Bytes the bundle may hold (default `Bundle.defaultMaxBytes`). */
  readonly maxBundleBytes?: number | undefined
  readonly keys: Envelope.Keys
  readonly lockExpiry: Duration.Duration
  /** Labels every test needs on top of its own (`--require`). */
  readonly require: ReadonlyArray<string>
  /** `--resume`: what the killed coordinator recorded. */
  readonly resume?: Resume.Previous | undefined
}

/** The experiment file could not be read to sign its content. */
export class ExperimentUnreadable extends Schema.TaggedError<ExperimentUnreadable>()("ExperimentUnreadable", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read the experiment ${this.file}: ${this.reason}`
  }
  override get [Runtime.errorExitCode](): number {
    return ExitCode.usage
  }
}

/** What the steps of one run's executor share. */
interface Executor {
  readonly options: Options
  readonly clientFor: Effect.Success<typeof Protocol.TestCaseAttempt.client>
  readonly sharding: Sharding.Sharding["Service"]
  readonly storage: MessageStorage.MessageStorage["Service"]
  readonly sql: SqlClient.SqlClient
  readonly fileSha256: string
  /** The live runners: a look younger than `directoryTtl`, or one up to `directoryUsable` while the next is taken. */
  readonly live: Effect.Effect<ReadonlyArray<RunnerDirectory.RunnerRow>, ClusterUnavailable>
  /** The sha256 of the run's bundle, stored in Postgres. */
  readonly bundle: string
  /** Attempts dispatched to each runner and not ended. */
  readonly inFlight: Map<string, number>
  /** When this coordinator first saw each runner without shards of a group (`internal/joining.ts`). */
  readonly joining: Map<string, number>
  /** Resumed tests: attempt numbers go on from the previous coordinator's. */
  readonly offsets: Map<string, number>
  /** Resumed tests that had finished: the manager may ask again (retries), they are not run again. */
  readonly done: Map<string, TestCase.AttemptResult>
  /** The streams of attempts that have ended here, going on to the engine's end of their requests. */
  readonly streams: FiberSet.FiberSet<void, unknown>
  /** The run's journal, held open (`Journal.appender`) in `scope`, by run directory. */
  readonly journals: Map<string, Deferred.Deferred<Journal.Appender, PlatformError.PlatformError>>
  readonly scope: Scope.Scope
}

/** One attempt as the manager asked for it. */
interface Asked {
  readonly test: Plan.TestPlan
  readonly context: TestCase.AttemptContext
}

/** One dispatch of an attempt being followed. */
interface Followed extends Asked {
  readonly entityId: string
  readonly request: Protocol.AttemptRequest
  readonly dir: string
  readonly startedAt: number
}

/** How an attempt's stream went, chunk by chunk. */
interface Progress {
  incarnation: string | undefined
  runner: string | undefined
  host: string | undefined
  finished: typeof Protocol.Finished.Type | undefined
  published: boolean
  dropped: number
  /** The next `Events` sequence number of this incarnation, and how far each file is written. */
  nextSeq: number
  written: Map<string, number>
  /** Directories of the attempt's files made so far (one `mkdir` each, not one per piece). */
  made: Set<string>
}

type Outcome =
  | { readonly _tag: "Done"; readonly result: TestCase.AttemptResult }
  | { readonly _tag: "Refused"; readonly reason: string }
  | { readonly _tag: "Again" }

// Synchronous: an Effect per line cost twice the decoding itself (about 40 lines per trivial test).
const decodeEvent = Schema.decodeUnknownExit(Schema.fromJsonString(TestbedEvent.TestbedEvent))

/** Publishes how an attempt ended, in the shape `TestCase.runAttempt` gives it. */
const emitFinished = Effect.fnUntraced(function* (ended: {
  readonly test: Plan.TestPlan
  readonly attempt: number
  readonly dir: string
  readonly context: TestCase.AttemptContext
  readonly startedAt: number
  readonly status: TestEvent.TestStatus
  readonly reason: string
  readonly willRetry: boolean
  readonly fastFailTriggered: boolean
  readonly missingLabels?: ReadonlyArray<string> | undefined
}) {
  const path = yield* Path.Path
  const now = yield* Clock.currentTimeMillis
  yield* EventBus.emit({
    type: "test.finished",
    entityId: ended.test.name,
    data: {
      name: ended.test.name,
      attempt: ended.attempt,
      status: ended.status,
      durationMs: now - ended.startedAt,
      errorMessage: ended.reason,
      logsPath: path.relative(ended.context.runDir, ended.dir),
      ...(ended.willRetry ? { willRetry: true } : {}),
      ...(ended.fastFailTriggered ? { fastFailTriggered: true } : {}),
      ...(ended.missingLabels === undefined ? {} : { missingLabels: ended.missingLabels })
    }
  })
})

/** A run id: 16 random base-32 characters. */
export const newRunId = () => [...randomBytes(16)].map((byte) => "abcdefghijklmnopqrstuvwxyz234567"[byte % 32]).join("")

/** The live runners; Postgres away is waited for (up to the lock expiry), then `ClusterUnavailable`. */
const listLive = (options: Options, sql: SqlClient.SqlClient) =>
  RunnerDirectory.list(options.lockExpiry).pipe(
    OutageTolerant.retryingSql(options.lockExpiry),
    Effect.mapError((error) =>
      error._tag === "ClusterUnavailable" ? error : new ClusterUnavailable({ reason: error.message })
    ),
    Effect.provideService(SqlClient.SqlClient, sql)
  )

/**
 * How long one look at the runner directory serves every dispatch and group watch of the run. Runners publish
 * their rows every second, so a younger look is as good; without it each dispatch waited for its own query (twelve
 * at once when a run starts) and every attempt in flight queried again every 2 s.
 */
export const directoryTtl = Duration.millis(500)

/**
 * How old a look may be and still be served while the next is taken (`internal/recentLook.ts`): two of the runners'
 * heartbeats. Dispatches come in rounds (as attempts end), seconds apart: with the look only fresh for
 * `directoryTtl`, the first dispatch of each round waited for the query, and the round's others with it.
 */
export const directoryUsable = Duration.seconds(2)

/** Every runner of the look holds shards of each of its groups: no shards are moving to a runner that just joined. */
const settled = (runners: ReadonlyArray<RunnerDirectory.RunnerRow>) =>
  runners.every((runner) => Labels.groupsOf(runner.labels).every((group) => Placement.holds(runner, group)))

const groupOfId = (id: string) => Protocol.TestCaseAttempt.getShardGroup(EntityId.make(id))

const addressOf = (executor: Executor, entityId: string) =>
  EntityAddress.make({
    shardId: executor.sharding.getShardId(EntityId.make(entityId), groupOfId(entityId)),
    entityType: EntityType.make(Protocol.TestCaseAttempt.type),
    entityId: EntityId.make(entityId)
  })

/**
 * `--resume`: a test the killed coordinator finished is answered from its record; one it had dispatched is
 * re-attached (the same request again). Undefined: run it (from `dispatch`).
 */
const resumed = Effect.fn("RemoteExecutor.resumed")(function* (executor: Executor, asked: Asked, given: number) {
  const previousRun = executor.options.resume
  const { test, context } = asked
  if (previousRun === undefined || given !== 1 || executor.offsets.has(test.name)) return { first: 0 }
  const path = yield* Path.Path
  const previous = yield* Resume.carry(previousRun, test, context.runDir)
  executor.offsets.set(test.name, previous.attempts)
  if (previous._tag === "Finished") {
    executor.done.set(test.name, previous.result)
    return { first: 0, result: previous.result }
  }
  if (previous._tag === "Fresh") return { first: 0 }
  const { entry, began } = previous
  const dir = path.join(context.runDir, "tests", test.slug, `attempt-${entry.request.attempt}`)
  const startedAt = yield* Clock.currentTimeMillis
  const outcome = yield* follow(
    executor,
    { ...asked, entityId: entry.entityId, request: entry.request, dir, startedAt },
    began
  )
  if (outcome._tag === "Done") return { first: 0, result: outcome.result }
  executor.offsets.set(test.name, previous.attempts - 1)
  return { first: entry.request.dispatch + 1 }
})

/** The manager's `runAttempt`: dispatch the attempt to an eligible runner (again when its group empties). */
const runAttempt = Effect.fn("RemoteExecutor.runAttempt")(function* (
  executor: Executor,
  test: Plan.TestPlan,
  given: number,
  context: TestCase.AttemptContext
) {
  const before = executor.done.get(test.name)
  if (before !== undefined) return before
  const asked: Asked = { test, context }
  const carried = yield* resumed(executor, asked, given)
  if (carried.result !== undefined) return carried.result
  const path = yield* Path.Path
  const fs = yield* FileSystem.FileSystem
  const attempt = given + (executor.offsets.get(test.name) ?? 0)
  const dir = path.join(context.runDir, "tests", test.slug, `attempt-${attempt}`)
  const startedAt = yield* Clock.currentTimeMillis
  const finish = Effect.fn("RemoteExecutor.finish")(function* (
    status: TestEvent.TestStatus,
    reason: string,
    missingLabels?: ReadonlyArray<string>
  ) {
    // Its logs path is the attempt's directory, as for an attempt that ran (a dispatch makes it in `follow`).
    yield* fs
      .makeDirectory(dir, { recursive: true })
      .pipe(Effect.mapError((error) => WriteFailed.fromError(dir, error)))
    const now = yield* Clock.currentTimeMillis
    yield* emitFinished({
      test,
      attempt,
      dir,
      context,
      startedAt,
      status,
      reason,
      missingLabels,
      ...context.decide(status)
    })
    return { status, reason, durationMs: now - startedAt, logsPath: dir } satisfies TestCase.AttemptResult
  })
  for (let dispatch = carried.first; ; dispatch++) {
    const outcome = yield* dispatchOnce(executor, asked, attempt, dispatch, dir, startedAt).pipe(
      Effect.catchTag("ClusterUnavailable", (error) =>
        Effect.succeed({ _tag: "Refused", reason: error.message } satisfies Outcome)
      )
    )
    if (outcome._tag === "Done") return outcome.result
    if (outcome._tag === "Unschedulable") return yield* finish("unschedulable", outcome.reason, outcome.missing)
    if (outcome._tag === "Refused") return yield* finish("failed", outcome.reason)
    // The group emptied: the request is gone; try again with whatever is eligible now.
  }
})

/** The test's service plugins that come from the experiment's plugin directories (not built in). */
const ownPlugins = ({ test, context }: Asked) =>
  test.services
    .filter((service) => (context.pluginSource?.(service.plugin.name) ?? "builtin") !== "builtin")
    .map((service) => ({ name: service.plugin.name, programs: service.plugin.programs ?? [] }))

/** Chooses a runner for one dispatch of the attempt and follows it there; unschedulable when none is eligible. */
const dispatchOnce = Effect.fn("RemoteExecutor.dispatchOnce")(function* (
  executor: Executor,
  asked: Asked,
  attempt: number,
  dispatch: number,
  dir: string,
  startedAt: number
) {
  const { test, context } = asked
  const needed = Labels.required(test, executor.options.require)
  const groupOf = (runner: RunnerDirectory.RunnerRow) => (needed.length === 0 ? "default" : runner.group)
  const eligibleIn = (runners: ReadonlyArray<RunnerDirectory.RunnerRow>) =>
    runners.filter((runner) => Labels.satisfies(runner.labels, needed))
  const runners = yield* Joining.settled({
    look: executor.live,
    eligible: eligibleIn,
    groupOf,
    since: executor.joining,
    // A join can take a lock expiry: a shard whose holder died moves once its lock has expired.
    within: executor.options.lockExpiry,
    interval: directoryTtl
  })
  const chosen = Placement.choose(eligibleIn(runners), executor.inFlight, groupOf)
  if (chosen === undefined) {
    const absent = Labels.missing(
      needed,
      runners.map((runner) => runner.labels)
    )
    return runners.length === 0
      ? { _tag: "Unschedulable" as const, reason: "no live runner in the cluster", missing: needed }
      : {
          _tag: "Unschedulable" as const,
          reason: `no runner has labels: ${absent.join(", ")}${Labels.ownPluginHint(absent, ownPlugins(asked))}`,
          missing: absent
        }
  }
  const group = groupOf(chosen)
  const base = `${group}/${executor.options.runId}/${Placement.testKey(test.slug, test.name)}/${attempt}/${dispatch}`
  const entityId = Placement.salted(
    base,
    chosen.shards.filter((shard) => shard.startsWith(`${group}:`)),
    (id) => executor.sharding.getShardId(EntityId.make(id), groupOfId(id)).toString()
  )
  const inFlight = executor.inFlight
  inFlight.set(chosen.name, (inFlight.get(chosen.name) ?? 0) + 1)
  const request = yield* signed(executor, test, attempt, dispatch, entityId, context)
  return yield* follow(executor, { ...asked, entityId, request, dir, startedAt }, undefined).pipe(
    Effect.ensuring(Effect.sync(() => inFlight.set(chosen.name, (inFlight.get(chosen.name) ?? 1) - 1)))
  )
})

/** The request of one dispatch of an attempt, signed. */
const signed = Effect.fn("RemoteExecutor.signed")(function* (
  executor: Executor,
  test: Plan.TestPlan,
  attempt: number,
  dispatch: number,
  entityId: string,
  context: TestCase.AttemptContext
) {
  const { options } = executor
  const now = yield* Clock.currentTimeMillis
  const unsigned = {
    runId: options.runId,
    testKey: Placement.testKey(test.slug, test.name),
    test: test.name,
    attempt,
    dispatch,
    file: options.file,
    fileSha256: executor.fileSha256,
    pluginDirectories: options.pluginDirectories,
    bundle: executor.bundle,
    timeoutMs: Duration.toMillis(context.timeout),
    timeoutMessage: context.timeoutMessage,
    notAfter: now + Duration.toMillis(context.timeout) + 3_600_000,
    protocol: Protocol.protocolVersion
  }
  return { ...unsigned, mac: Envelope.sign(options.keys.request, Protocol.requestParts(entityId, unsigned)) }
})

/** Records the run of a runner that stopped as `runner_lost` (an infrastructure retry: another run follows). */
const lost = (followed: Followed, reason: string) =>
  emitFinished({
    test: followed.test,
    attempt: followed.request.attempt,
    dir: followed.dir,
    context: followed.context,
    startedAt: followed.startedAt,
    status: "runner_lost",
    reason,
    willRetry: true,
    fastFailTriggered: false
  })

/** Appends to the run's journal, opened at the first entry and held open until the run's end. */
const journal = (executor: Executor, runDir: string, entry: Journal.Entry) =>
  Effect.suspend(() => {
    const known = executor.journals.get(runDir)
    if (known !== undefined) return Effect.flatMap(Deferred.await(known), (append) => append(entry))
    const opened = Deferred.makeUnsafe<Journal.Appender, PlatformError.PlatformError>()
    executor.journals.set(runDir, opened)
    // Uninterruptible: a dispatch interrupted while it opened the journal would leave the others waiting forever.
    return Journal.appender(runDir).pipe(
      Scope.provide(executor.scope),
      Effect.exit,
      Effect.flatMap((exit) => Deferred.done(opened, exit)),
      Effect.uninterruptible,
      Effect.andThen(Deferred.await(opened)),
      Effect.flatMap((append) => append(entry))
    )
  })

/**
 * Sends one dispatch of the attempt (journaled first) and replays its stream; gives up when its group has had no
 * runner. `began`: the runner already known to run it (a resumed stream has no `Started` again).
 */
const follow = Effect.fn("RemoteExecutor.follow")(function* (
  executor: Executor,
  followed: Followed,
  began: typeof Journal.Began.Type | undefined
) {
  const fs = yield* FileSystem.FileSystem
  const { context, dir, entityId, request, test } = followed
  // Both before the request goes (on every dispatch's path): at once, not one file-system round trip after the other.
  yield* Effect.all(
    [
      fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError((error) => WriteFailed.fromError(dir, error))),
      journal(executor, context.runDir, { _tag: "Dispatched", test: test.name, entityId, request }).pipe(
        Effect.mapError((error) => WriteFailed.fromError(context.runDir, error))
      )
    ],
    { concurrency: "unbounded", discard: true }
  )
  if (began !== undefined) yield* journal(executor, context.runDir, began).pipe(Effect.ignore)
  const progress: Progress = {
    incarnation: began?.incarnation,
    runner: began?.runner,
    host: began?.host,
    finished: undefined,
    published: false,
    dropped: 0,
    nextSeq: 0,
    written: new Map(),
    made: new Set()
  }
  const { finished, fiber } = yield* consume(executor, followed, progress)
  const raced = yield* Effect.raceFirst(
    Effect.as(Effect.raceFirst(Fiber.join(fiber), Deferred.await(finished)), "ended" as const),
    Effect.as(watchGroup(executor, groupOfId(entityId)), "group-empty" as const)
  ).pipe(
    Effect.catchTag("AttemptRefused", (error) => Effect.succeed({ refused: Protocol.refusalReason(error) })),
    Effect.catchTags({ WriteFailed: (error) => Effect.fail(error) }),
    Effect.catch((error) => Effect.succeed({ refused: `cluster error: ${String(error)}` })),
    Effect.onInterrupt(() =>
      Effect.andThen(Fiber.interrupt(fiber), progress.published ? Effect.void : stopped(followed))
    )
  )
  if (progress.finished === undefined) yield* Fiber.interrupt(fiber)
  return yield* ended(executor, followed, progress, raced)
})

/**
 * Sends the request and replays its stream in the background. The attempt has ended here once `Finished` is in
 * (`finished`); the stream goes on, to acknowledge the last row and take the engine's end of the request (a round
 * trip on the attempt's path otherwise). A new `Started` after `Finished` (its runner died before the engine stored
 * that end, and another runs it again) ends the stream, which stops that re-run.
 */
const consume = Effect.fn("RemoteExecutor.consume")(function* (
  executor: Executor,
  followed: Followed,
  progress: Progress
) {
  const finished = yield* Deferred.make<void>()
  const fiber = yield* executor
    .clientFor(followed.entityId)
    .RunAttempt(followed.request, { streamBufferSize: 1 })
    .pipe(
      Stream.takeWhile((chunk) => progress.finished === undefined || chunk._tag !== "Started"),
      Stream.runForEach((chunk) =>
        Effect.andThen(onChunk(executor, followed, progress, chunk), () =>
          progress.finished === undefined ? Effect.void : Deferred.succeed(finished, undefined)
        )
      ),
      // The attempt's result is in by then: what goes wrong later is the engine's bookkeeping, not the test's.
      Effect.catchCause((cause) => (progress.finished === undefined ? Effect.failCause(cause) : Effect.void)),
      FiberSet.run(executor.streams)
    )
  return { finished, fiber }
})

/** What the end of a followed stream means for the attempt. */
const ended = Effect.fn("RemoteExecutor.ended")(function* (
  executor: Executor,
  followed: Followed,
  progress: Progress,
  raced: "ended" | "group-empty" | { readonly refused: string }
) {
  if (typeof raced === "object") return { _tag: "Refused", reason: raced.refused } satisfies Outcome
  if (raced === "group-empty") {
    yield* Effect.ignore(executor.storage.clearAddress(addressOf(executor, followed.entityId)))
    if (progress.incarnation !== undefined) {
      yield* lost(
        followed,
        `runner ${progress.runner} (${progress.host}) stopped and no other runner serves its labels`
      )
    }
    return { _tag: "Again" } satisfies Outcome
  }
  const finished = progress.finished
  if (finished === undefined) {
    return { _tag: "Refused", reason: "the runner's stream ended without a result" } satisfies Outcome
  }
  const status = Schema.decodeUnknownOption(TestEvent.TestStatus)(finished.status)
  return {
    _tag: "Done",
    result: {
      status: Option.getOrElse(status, () => "failed" as const),
      reason: finished.reason,
      durationMs: finished.durationMs,
      logsPath: followed.dir
    }
  } satisfies Outcome
})

/** One chunk of the runner's stream: checked, then recorded (a second `Started` means the first runner was lost). */
const onChunk = Effect.fn("RemoteExecutor.onChunk")(function* (
  executor: Executor,
  followed: Followed,
  progress: Progress,
  chunk: Protocol.AttemptChunk
) {
  const { context, entityId, test } = followed
  // After the end only duplicates come (the engine delivers at least once).
  if (progress.finished !== undefined) return
  if (!Envelope.verify(executor.options.keys.chunk, Protocol.chunkParts(entityId, chunk), chunk.mac)) {
    progress.dropped++
    return yield* Effect.logWarning(`dropped a chunk of ${test.name} whose signature does not check out`)
  }
  if (chunk._tag === "Started") {
    if (progress.incarnation === chunk.incarnation) return
    if (progress.incarnation !== undefined) {
      yield* lost(
        followed,
        `runner ${progress.runner} (${progress.host}) stopped during the attempt; re-run on ${chunk.runner}`
      )
    }
    progress.incarnation = chunk.incarnation
    progress.runner = chunk.runner
    progress.host = chunk.host
    progress.nextSeq = 0
    progress.written = new Map()
    return yield* journal(executor, context.runDir, {
      _tag: "Began",
      entityId,
      incarnation: chunk.incarnation,
      runner: chunk.runner,
      host: chunk.host
    }).pipe(Effect.mapError((error) => WriteFailed.fromError(context.runDir, error)))
  }
  // Left over from an incarnation that was lost.
  if (chunk.incarnation !== progress.incarnation) return
  // A chunk delivered twice (the engine delivers at least once) is recorded once.
  if (chunk._tag === "Events") {
    if (chunk.seq < progress.nextSeq) return
    progress.nextSeq = chunk.seq + 1
    return yield* replay(followed, progress, chunk.lines)
  }
  if (chunk._tag === "Files") {
    // Pieces of one file in order, the files at once: the last row of an attempt carries its files before
    // `Finished`, so their writes are on the path to the attempt's end here (and the next dispatch).
    const byFile = new Map<string, Array<typeof Protocol.FilePiece.Type>>()
    for (const piece of chunk.pieces) {
      const end = progress.written.get(piece.path)
      if (end !== undefined && piece.offset < end) continue
      if (end !== undefined && piece.offset === 0) continue
      progress.written.set(piece.path, piece.offset + piece.bytes.length)
      const pieces = byFile.get(piece.path)
      if (pieces === undefined) byFile.set(piece.path, [piece])
      else pieces.push(piece)
    }
    return yield* write(followed, progress, [...byFile.values()])
  }
  yield* replay(followed, progress, chunk.lines)
  progress.finished = chunk
})

/** The runner's events, published on this run's bus; the attempt's `test.finished` gets this run's decision. */
const replay = Effect.fn("RemoteExecutor.replay")(function* (
  followed: Followed,
  progress: Progress,
  lines: ReadonlyArray<string>
) {
  const bus = yield* EventBus.EventBus
  const { context, test } = followed
  for (const line of lines) {
    const decoded = decodeEvent(line)
    if (Exit.isFailure(decoded)) {
      yield* Effect.logWarning(`dropped an event of ${test.name} that is not a testbed event`)
      continue
    }
    const event = decoded.value
    if (event.type === "test.state_changed" && event.entityId === test.name && event.data.to === "SETTING_UP") {
      // Which runner ran this attempt, where the log says the attempt began (the schemas have no field for it).
      yield* bus.publish({
        ...event,
        data: { ...event.data, metadata: { ...event.data.metadata, runner: progress.runner, host: progress.host } }
      })
    } else if (event.type === "test.finished" && event.entityId === test.name) {
      const { willRetry, fastFailTriggered } = context.decide(event.data.status)
      progress.published = true
      yield* bus.publish({
        ...event,
        data: {
          ...event.data,
          ...(willRetry ? { willRetry } : {}),
          ...(fastFailTriggered ? { fastFailTriggered } : {})
        }
      })
    } else {
      yield* bus.publish(event)
    }
  }
})

/** Files of a chunk written at once (a chunk holds up to 256 KiB: many small files; one descriptor each). */
const filesAtOnce = 8

/**
 * Pieces of the attempt's files (one array per file, in order), written under its directory (a path outside it is
 * dropped): each new directory made once, then the files at once, each file's pieces in order.
 */
const write = Effect.fn("RemoteExecutor.write")(function* (
  followed: Followed,
  progress: Progress,
  files: ReadonlyArray<ReadonlyArray<typeof Protocol.FilePiece.Type>>
) {
  const path = yield* Path.Path
  const fs = yield* FileSystem.FileSystem
  const { dir, test } = followed
  const placed: Array<ReadonlyArray<{ readonly target: string; readonly piece: typeof Protocol.FilePiece.Type }>> = []
  for (const pieces of files) {
    const first = pieces[0]
    if (first === undefined) continue
    const target = path.resolve(dir, first.path)
    if (path.isAbsolute(first.path) || !target.startsWith(`${dir}${path.sep}`)) {
      yield* Effect.logWarning(`dropped a file of ${test.name} outside its directory: ${first.path}`)
      continue
    }
    placed.push(pieces.map((piece) => ({ target, piece })))
  }
  const parents = new Set(placed.map((pieces) => path.dirname(pieces[0]!.target)).filter((p) => !progress.made.has(p)))
  yield* Effect.forEach(parents, (parent) => fs.makeDirectory(parent, { recursive: true }), {
    concurrency: filesAtOnce,
    discard: true
  }).pipe(Effect.mapError((error) => WriteFailed.fromError(dir, error)))
  for (const parent of parents) progress.made.add(parent)
  yield* Effect.forEach(
    placed,
    (pieces) =>
      Effect.forEach(
        pieces,
        ({ target, piece }) => fs.writeFile(target, piece.bytes, { flag: piece.offset === 0 ? "w" : "a" }),
        { discard: true }
      ),
    { concurrency: filesAtOnce, discard: true }
  ).pipe(Effect.mapError((error) => WriteFailed.fromError(dir, error)))
})

/** Succeeds once the group has had no live runner for the lock expiry and 5 s more. */
const watchGroup = Effect.fn("RemoteExecutor.watchGroup")(function* (executor: Executor, group: string) {
  const since = yield* Ref.make(Option.none<number>())
  const limit = Duration.toMillis(executor.options.lockExpiry) + 5000
  const check = Effect.gen(function* () {
    const runners = yield* executor.live
    const served = group === "default" ? runners.length > 0 : runners.some((runner) => runner.group === group)
    const now = yield* Clock.currentTimeMillis
    if (served) return yield* Ref.set(since, Option.none())
    const first = Option.getOrElse(yield* Ref.get(since), () => now)
    yield* Ref.set(since, Option.some(first))
    if (now - first >= limit) return yield* Effect.fail("empty" as const)
  })
  // The directory unreadable (Postgres away) says nothing about the group: look again later. The first look is
  // one interval in: the dispatch has just seen the group served (one query less per attempt).
  yield* check.pipe(
    Effect.catchTag("ClusterUnavailable", () => Effect.void),
    Effect.delay("2 seconds"),
    Effect.forever,
    Effect.flip
  )
})

/** The attempt was interrupted here (fast-fail, timeout, Ctrl-C): record how it ended, as a local run does. */
const stopped = Effect.fn("RemoteExecutor.stopped")(function* (followed: Followed) {
  const cause = Option.getOrUndefined(yield* Ref.get(followed.context.stopCause))
  yield* emitFinished({
    test: followed.test,
    attempt: followed.request.attempt,
    dir: followed.dir,
    context: followed.context,
    startedAt: followed.startedAt,
    status: cause?.status ?? "interrupted",
    reason: cause?.reason ?? "run interrupted",
    willRetry: false,
    fastFailTriggered: false
  })
})

export const make = Effect.fn("RemoteExecutor.make")(function* (options: Options) {
  const fs = yield* FileSystem.FileSystem
  const bytes = yield* fs
    .readFile(options.file)
    .pipe(Effect.mapError((error) => new ExperimentUnreadable({ file: options.file, reason: error.message })))
  const fileSha256 = createHash("sha256").update(bytes).digest("hex")
  if (options.resume !== undefined && options.resume.fileSha256 !== fileSha256) {
    return yield* new Resume.ResumeMismatch({
      runDir: options.resume.runDir,
      reason: `${options.file} is not the experiment file of that run (its content changed)`
    })
  }
  const sql = yield* SqlClient.SqlClient
  const unavailable = (error: { readonly message: string }) => new ClusterUnavailable({ reason: error.message })
  // The runner table once per run (every dispatch and group watch lists the runners from it), then the bundle.
  yield* RunnerDirectory.migrate().pipe(Effect.mapError(unavailable), Effect.provideService(SqlClient.SqlClient, sql))
  const live = yield* RecentLook.make({
    look: listLive(options, sql),
    fresh: directoryTtl,
    usable: directoryUsable,
    settled
  })
  // The first look at the runners is taken while the bundle is published: the first dispatches find it there.
  yield* Effect.forkScoped(Effect.ignore(live), { startImmediately: true })
  const bundle = yield* BundleSources.publish(options.runId, {
    file: options.file,
    pluginDirectories: options.pluginDirectories,
    exclude: options.exclude ?? [],
    maxBytes: options.maxBundleBytes ?? Bundle.defaultMaxBytes
  }).pipe(
    Effect.catchTag("SqlError", (error) => Effect.fail(unavailable(error))),
    Effect.provideService(SqlClient.SqlClient, sql)
  )
  const executor: Executor = {
    options,
    clientFor: yield* Protocol.TestCaseAttempt.client,
    sharding: yield* Sharding.Sharding,
    storage: yield* MessageStorage.MessageStorage,
    sql,
    live,
    fileSha256,
    bundle: bundle.sha256,
    inFlight: new Map(),
    joining: new Map(),
    offsets: new Map(),
    done: new Map(),
    streams: yield* FiberSet.make<void, unknown>(),
    journals: new Map(),
    scope: yield* Effect.scope
  }
  // Before the set interrupts them: give the ended attempts' streams a moment to end as the engine ends them.
  yield* Effect.addFinalizer(() =>
    FiberSet.awaitEmpty(executor.streams).pipe(Effect.timeoutOption("5 seconds"), Effect.asVoid)
  )
  return TestCaseExecutor.TestCaseExecutor.of({
    runAttempt: (test, attempt, context) => runAttempt(executor, test, attempt, context),
    // Each runner makes the certificate of each attempt it runs (AttemptRunner.ts): the coordinator needs none.
    makesCertificates: true
  })
})
