/**
 * The coordinator's `TestCaseExecutor`: each attempt is sent to a runner whose labels include what the test
 * needs, as one persisted streaming request, and what the runner streams back is replayed here: its events go on
 * this run's bus (so `events.jsonl` and the reports are a local run's), its files land in this run's directory.
 * - No live runner has the labels: the attempt ends `failed` with `unschedulable: no runner has labels: …` at
 *   once (a request to a group nobody serves would wait forever).
 * - The runner dies mid-attempt: the engine re-runs the request on another runner of the group on the same
 *   stream; a second `Started` shows it, and the lost run is recorded as `test.finished` `interrupted` with
 *   `willRetry` and `runner_lost: …` (an infrastructure retry, not a test retry).
 * - The group empties (its only runner died): after the lock expiry and 5 s the request is cancelled and deleted,
 *   and the attempt is dispatched again to whatever is eligible then.
 * Chunks whose signature does not check out are dropped: nothing unsigned reaches the record.
 */
import { createHash, randomBytes } from "node:crypto"
import { EventBus, TestbedEvent, TestEvent, WriteFailed } from "@testbed/events"
import { type Plan, type TestCase, TestCaseExecutor } from "@testbed/experiments"
import { Clock, Duration, Effect, FileSystem, Option, Path, Ref, Schedule, Schema, Stream } from "effect"
import { EntityAddress, EntityId, EntityType, MessageStorage, Sharding } from "effect/cluster"
import { SqlClient } from "effect/sql"
import * as Protocol from "./AttemptProtocol.ts"
import * as Envelope from "./Envelope.ts"
import * as Placement from "./internal/placement.ts"
import * as Journal from "./Journal.ts"
import * as Labels from "./Labels.ts"
import * as Resume from "./Resume.ts"
import * as RunnerDirectory from "./RunnerDirectory.ts"

export interface Options {
  readonly runId: string
  /** The experiment file (absolute); runners read it at the same path. */
  readonly file: string
  readonly pluginDirectories: ReadonlyArray<string>
  readonly keys: Envelope.Keys
  readonly lockExpiry: Duration.Duration
  /** Labels every test needs on top of its own (`--require`). */
  readonly require: ReadonlyArray<string>
  /** `--resume`: what the killed coordinator recorded. */
  readonly resume?: Resume.Previous | undefined
}

/** How an attempt's stream went, chunk by chunk. */
interface Progress {
  incarnation: string | undefined
  runner: string | undefined
  host: string | undefined
  finished: typeof Protocol.Finished.Type | undefined
  published: boolean
  dropped: number
}

const decodeEvent = Schema.decodeUnknownEffect(Schema.fromJsonString(TestbedEvent.TestbedEvent))

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
      ...(ended.fastFailTriggered ? { fastFailTriggered: true } : {})
    }
  })
})

/** A run id: 16 random base-32 characters. */
export const newRunId = () => [...randomBytes(16)].map((byte) => "abcdefghijklmnopqrstuvwxyz234567"[byte % 32]).join("")

export const make = Effect.fn("RemoteExecutor.make")(function* (options: Options) {
  const clientFor = yield* Protocol.TestCaseAttempt.client
  const sharding = yield* Sharding.Sharding
  const storage = yield* MessageStorage.MessageStorage
  const sql = yield* SqlClient.SqlClient
  const fileSha256 = createHash("sha256")
    .update(yield* (yield* FileSystem.FileSystem).readFile(options.file).pipe(Effect.orDie))
    .digest("hex")
  if (options.resume !== undefined && options.resume.fileSha256 !== fileSha256) {
    return yield* new Resume.ResumeMismatch({
      runDir: options.resume.runDir,
      reason: `${options.file} is not the experiment file of that run (its content changed)`
    })
  }
  const inFlight = new Map<string, number>()
  const live = RunnerDirectory.list(options.lockExpiry).pipe(
    Effect.provideService(SqlClient.SqlClient, sql),
    Effect.orDie
  )
  const groupOfId = (id: string) => Protocol.TestCaseAttempt.getShardGroup(EntityId.make(id))
  const shardOf = (id: string) => sharding.getShardId(EntityId.make(id), groupOfId(id)).toString()

  // Resumed tests: attempt numbers go on from the previous coordinator's.
  const offsets = new Map<string, number>()
  // Resumed tests that had finished: the manager may ask again (retries), they are not run again.
  const done = new Map<string, TestCase.AttemptResult>()

  const runAttempt = Effect.fn("RemoteExecutor.runAttempt")(function* (
    test: Plan.TestPlan,
    given: number,
    context: TestCase.AttemptContext
  ) {
    const path = yield* Path.Path
    const fs = yield* FileSystem.FileSystem
    let first = 0
    const before = done.get(test.name)
    if (before !== undefined) return before
    if (options.resume !== undefined && given === 1 && !offsets.has(test.name)) {
      const previous = yield* Resume.carry(options.resume, test, context.runDir)
      offsets.set(test.name, previous.attempts)
      if (previous._tag === "Finished") {
        done.set(test.name, previous.result)
        return previous.result
      }
      if (previous._tag === "Running") {
        const dir = path.join(context.runDir, "tests", test.slug, `attempt-${previous.entry.request.attempt}`)
        const outcome = yield* follow(
          test,
          previous.entry.entityId,
          previous.entry.request,
          dir,
          context,
          yield* Clock.currentTimeMillis,
          previous.began
        )
        if (outcome._tag === "Done") return outcome.result
        first = previous.entry.request.dispatch + 1
        offsets.set(test.name, previous.attempts - 1)
      }
    }
    const attempt = given + (offsets.get(test.name) ?? 0)
    const dir = path.join(context.runDir, "tests", test.slug, `attempt-${attempt}`)
    yield* fs
      .makeDirectory(dir, { recursive: true })
      .pipe(Effect.mapError((error) => WriteFailed.fromError(dir, error)))
    const startedAt = yield* Clock.currentTimeMillis
    const needed = Labels.required(test, options.require)
    const finish = Effect.fnUntraced(function* (status: TestEvent.TestStatus, reason: string) {
      const now = yield* Clock.currentTimeMillis
      yield* emitFinished({ test, attempt, dir, context, startedAt, status, reason, ...context.decide(status) })
      return { status, reason, durationMs: now - startedAt, logsPath: dir } satisfies TestCase.AttemptResult
    })
    for (let dispatch = first; ; dispatch++) {
      const runners = yield* live
      const eligible = runners.filter((runner) => Labels.satisfies(runner.labels, needed))
      const chosen = Placement.choose(eligible, inFlight)
      if (chosen === undefined) {
        const absent = Labels.missing(
          needed,
          runners.map((runner) => runner.labels)
        )
        return yield* finish(
          "failed",
          runners.length === 0
            ? "unschedulable: no live runner in the cluster"
            : `unschedulable: no runner has labels: ${absent.join(", ")}`
        )
      }
      const group = needed.length === 0 ? "default" : chosen.group
      const base = `${group}/${options.runId}/${Placement.testKey(test.slug, test.name)}/${attempt}/${dispatch}`
      const entityId = Placement.salted(
        base,
        chosen.shards.filter((shard) => shard.startsWith(`${group}:`)),
        shardOf
      )
      inFlight.set(chosen.name, (inFlight.get(chosen.name) ?? 0) + 1)
      const request = yield* signed(test, attempt, dispatch, entityId, context)
      const outcome = yield* follow(test, entityId, request, dir, context, startedAt, undefined).pipe(
        Effect.ensuring(Effect.sync(() => inFlight.set(chosen.name, (inFlight.get(chosen.name) ?? 1) - 1)))
      )
      if (outcome._tag === "Done") return outcome.result
      if (outcome._tag === "Refused") return yield* finish("failed", outcome.reason)
      // The group emptied: the request is gone; try again with whatever is eligible now.
    }
  })

  /** The request of one dispatch of an attempt, signed. */
  const signed = Effect.fnUntraced(function* (
    test: Plan.TestPlan,
    attempt: number,
    dispatch: number,
    entityId: string,
    context: TestCase.AttemptContext
  ) {
    const now = yield* Clock.currentTimeMillis
    const unsigned = {
      runId: options.runId,
      testKey: Placement.testKey(test.slug, test.name),
      test: test.name,
      attempt,
      dispatch,
      file: options.file,
      fileSha256,
      pluginDirectories: options.pluginDirectories,
      timeoutMs: Duration.toMillis(context.timeout),
      timeoutMessage: context.timeoutMessage,
      notAfter: now + Duration.toMillis(context.timeout) + 3_600_000
    }
    return { ...unsigned, mac: Envelope.sign(options.keys.request, Protocol.requestParts(entityId, unsigned)) }
  })

  /**
   * Sends one dispatch of the attempt (journaled first) and replays its stream; gives up when its group has had no
   * runner. `began`: the runner already known to run it (a resumed stream has no `Started` again).
   */
  const follow = Effect.fnUntraced(function* (
    test: Plan.TestPlan,
    entityId: string,
    request: Protocol.AttemptRequest,
    dir: string,
    context: TestCase.AttemptContext,
    startedAt: number,
    began: typeof Journal.Began.Type | undefined
  ) {
    const path = yield* Path.Path
    const fs = yield* FileSystem.FileSystem
    const bus = yield* EventBus.EventBus
    const attempt = request.attempt
    yield* fs
      .makeDirectory(dir, { recursive: true })
      .pipe(Effect.mapError((error) => WriteFailed.fromError(dir, error)))
    yield* Journal.append(context.runDir, { _tag: "Dispatched", test: test.name, entityId, request }).pipe(
      Effect.mapError((error) => WriteFailed.fromError(context.runDir, error))
    )
    if (began !== undefined) yield* Journal.append(context.runDir, began).pipe(Effect.ignore)
    const progress: Progress = {
      incarnation: began?.incarnation,
      runner: began?.runner,
      host: began?.host,
      finished: undefined,
      published: false,
      dropped: 0
    }

    const lost = (reason: string) =>
      emitFinished({
        test,
        attempt,
        dir,
        context,
        startedAt,
        status: "interrupted",
        reason: `runner_lost: ${reason}`,
        willRetry: true,
        fastFailTriggered: false
      })

    const onChunk = (chunk: Protocol.AttemptChunk) =>
      Effect.gen(function* () {
        if (!Envelope.verify(options.keys.chunk, Protocol.chunkParts(entityId, chunk), chunk.mac)) {
          progress.dropped++
          return yield* Effect.logWarning(`dropped a chunk of ${test.name} whose signature does not check out`)
        }
        if (chunk._tag === "Started") {
          if (progress.incarnation === chunk.incarnation) return
          if (progress.incarnation !== undefined) {
            yield* lost(
              `runner ${progress.runner} (${progress.host}) stopped during the attempt; re-run on ${chunk.runner}`
            )
          }
          progress.incarnation = chunk.incarnation
          progress.runner = chunk.runner
          progress.host = chunk.host
          return yield* Journal.append(context.runDir, {
            _tag: "Began",
            entityId,
            incarnation: chunk.incarnation,
            runner: chunk.runner,
            host: chunk.host
          }).pipe(Effect.mapError((error) => WriteFailed.fromError(context.runDir, error)))
        }
        // Left over from an incarnation that was lost.
        if (chunk.incarnation !== progress.incarnation) return
        if (chunk._tag === "Events") return yield* replay(chunk.lines)
        if (chunk._tag === "ArtifactPiece") return yield* write(chunk)
        progress.finished = chunk
      })

    const replay = (lines: ReadonlyArray<string>) =>
      Effect.forEach(
        lines,
        (line) =>
          Effect.matchEffect(decodeEvent(line), {
            onFailure: () => Effect.logWarning(`dropped an event of ${test.name} that is not a testbed event`),
            onSuccess: (event) => {
              if (
                event.type === "test.state_changed" &&
                event.entityId === test.name &&
                event.data.to === "SETTING_UP"
              ) {
                // Which runner ran this attempt, where the log says the attempt began (the schemas have no field for it).
                return bus.publish({
                  ...event,
                  data: {
                    ...event.data,
                    metadata: { ...event.data.metadata, runner: progress.runner, host: progress.host }
                  }
                })
              }
              if (event.type !== "test.finished" || event.entityId !== test.name) return bus.publish(event)
              const { willRetry, fastFailTriggered } = context.decide(event.data.status)
              progress.published = true
              return bus.publish({
                ...event,
                data: {
                  ...event.data,
                  ...(willRetry ? { willRetry } : {}),
                  ...(fastFailTriggered ? { fastFailTriggered } : {})
                }
              })
            }
          }),
        { discard: true }
      )

    const write = (piece: typeof Protocol.ArtifactPiece.Type) =>
      Effect.gen(function* () {
        const target = path.resolve(dir, piece.path)
        if (path.isAbsolute(piece.path) || !target.startsWith(`${dir}${path.sep}`)) {
          return yield* Effect.logWarning(`dropped a file of ${test.name} outside its directory: ${piece.path}`)
        }
        yield* fs.makeDirectory(path.dirname(target), { recursive: true })
        yield* fs.writeFile(target, piece.bytes, { flag: piece.offset === 0 ? "w" : "a" })
      }).pipe(Effect.mapError((error) => WriteFailed.fromError(dir, error)))

    const stream = clientFor(entityId).RunAttempt(request, { streamBufferSize: 1 }).pipe(Stream.runForEach(onChunk))

    const groupEmpty = watchGroup(groupOfId(entityId))
    const raced = yield* Effect.raceFirst(
      Effect.map(stream, () => "ended" as const),
      Effect.as(groupEmpty, "group-empty" as const)
    ).pipe(
      Effect.catchTag("AttemptRefused", (error) => Effect.succeed({ refused: error.message })),
      Effect.catchTags({
        WriteFailed: (error) => Effect.fail(error)
      }),
      Effect.catch((error) => Effect.succeed({ refused: `cluster error: ${String(error)}` })),
      Effect.onInterrupt(() => (progress.published ? Effect.void : stopped(test, attempt, dir, context, startedAt)))
    )
    if (typeof raced === "object") return { _tag: "Refused" as const, reason: raced.refused }
    if (raced === "group-empty") {
      yield* Effect.ignore(
        storage.clearAddress(
          EntityAddress.make({
            shardId: sharding.getShardId(EntityId.make(entityId), groupOfId(entityId)),
            entityType: EntityType.make(Protocol.TestCaseAttempt.type),
            entityId: EntityId.make(entityId)
          })
        )
      )
      if (progress.incarnation !== undefined) {
        yield* lost(`runner ${progress.runner} (${progress.host}) stopped and no other runner serves its labels`)
      }
      return { _tag: "Again" as const }
    }
    const finished = progress.finished
    if (finished === undefined)
      return { _tag: "Refused" as const, reason: "the runner's stream ended without a result" }
    const status = Schema.decodeUnknownOption(TestEvent.TestStatus)(finished.status)
    return {
      _tag: "Done" as const,
      result: {
        status: Option.getOrElse(status, () => "failed" as const),
        reason: finished.reason,
        durationMs: finished.durationMs,
        logsPath: dir
      } satisfies TestCase.AttemptResult
    }
  })

  /** Succeeds once the group has had no live runner for the lock expiry and 5 s more. */
  const watchGroup = (group: string) =>
    Effect.gen(function* () {
      const since = yield* Ref.make(Option.none<number>())
      const limit = Duration.toMillis(options.lockExpiry) + 5000
      yield* Effect.repeat(
        Effect.gen(function* () {
          const runners = yield* live
          const served = group === "default" ? runners.length > 0 : runners.some((runner) => runner.group === group)
          const now = yield* Clock.currentTimeMillis
          if (served) return yield* Ref.set(since, Option.none())
          const first = Option.getOrElse(yield* Ref.get(since), () => now)
          yield* Ref.set(since, Option.some(first))
          if (now - first >= limit) return yield* Effect.fail("empty" as const)
        }).pipe(Effect.catchDefect(() => Effect.void)),
        Schedule.spaced("2 seconds")
      ).pipe(Effect.flip)
    })

  /** The attempt was interrupted here (fast-fail, timeout, Ctrl-C): record how it ended, as a local run does. */
  const stopped = (
    test: Plan.TestPlan,
    attempt: number,
    dir: string,
    context: TestCase.AttemptContext,
    startedAt: number
  ) =>
    Effect.gen(function* () {
      const cause = Option.getOrUndefined(yield* Ref.get(context.stopCause))
      yield* emitFinished({
        test,
        attempt,
        dir,
        context,
        startedAt,
        status: cause?.status ?? "interrupted",
        reason: cause?.reason ?? "run interrupted",
        willRetry: false,
        fastFailTriggered: false
      })
    })

  return TestCaseExecutor.TestCaseExecutor.of({ runAttempt })
})
