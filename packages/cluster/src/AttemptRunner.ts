/**
 * The runner's side of an attempt: check the request's protocol, signature and age before anything else, take a
 * slot, plan the experiment from its bundle (fetched into this runner's cache on first use, see BundleCache.ts;
 * refusing if its content differs from what the coordinator signed), run the attempt with the same code as a local
 * run on a bus of its own, and stream back `Started` with the first chunk after it (`heldStarted`), what it
 * published (events held up to 250 ms, see `internal/lingering.ts`), then the attempt's files (small ones several
 * to a chunk, at most 256 KiB a chunk), then how it ended with its last events. What waits is sent together, at
 * most 256 KiB a reply row (`internal/rows.ts`). Every chunk is signed with the chunk key.
 */
import { createHash, randomBytes } from "node:crypto"
import { rmdir } from "node:fs/promises"
import { dirname, sep } from "node:path"
import { EventBus, type TestbedEvent } from "@testbed/events"
import { Experiment, TestCaseExecutor } from "@testbed/experiments"
import { Certificates } from "@testbed/plugins"
import { Cause, Clock, Duration, Effect, FileSystem, Option, Path, Queue, Ref, type Semaphore, Stream } from "effect"
import { Entity, Sharding } from "effect/cluster"
import type { ChildProcessSpawner } from "effect/process"
import type { SqlClient } from "effect/sql"
import * as Protocol from "./AttemptProtocol.ts"
import * as BundleCache from "./BundleCache.ts"
import * as Envelope from "./Envelope.ts"
import * as Lingering from "./internal/lingering.ts"
import type * as Plans from "./internal/plans.ts"
import * as Rows from "./internal/rows.ts"

/** File bytes in one `Files` chunk at most, and the weight (bytes of files and events) of one reply row. */
export const pieceBytes = 256 * 1024
/** Events in one `Events` chunk (or carried by `Finished`) at most. */
export const eventsPerChunk = 256
/** How long events are held before they are sent (unless the attempt ends, or 256 are held, first). */
export const linger = Duration.millis(250)

export interface RunnerIdentity {
  readonly name: string
  readonly host: string
  readonly workdir: string
  readonly pluginDirectories: ReadonlyArray<string>
  readonly keys: Envelope.Keys
  readonly slots: Semaphore.Semaphore
  /** Entity id → test name of the attempts running here now (for the directory and `cluster status`). */
  readonly running: Ref.Ref<ReadonlyMap<string, string>>
  /** Bytes of files one attempt may send back; the rest is cut (default 256 MiB). */
  readonly maxArtifactBytes: number
  /** This runner's bundle cache: its bounds, and the bundles its attempts use now. */
  readonly bundles: BundleCache.Cache
  /**
   * What runs an attempt here: the local run's `TestCase.runAttempt` unless given (a unit test's
   * `TestCaseExecutor.layerTest`). Given here, not read from the context, so that a coordinator's remote executor
   * in the same process never sends a runner's attempt on again.
   */
  readonly executor?: TestCaseExecutor.TestCaseExecutor["Service"] | undefined
  /** The experiments planned for the attempts of a run, by run and content. */
  readonly plans: Plans.Plans<Planned, Protocol.AttemptRefused>
}

export type Emit = (chunk: Protocol.AttemptChunk) => Effect.Effect<void>

const refuse = (identity: RunnerIdentity, reason: string) =>
  new Protocol.AttemptRefused({ runner: identity.name, reason })

/** The protocol, the signature and the deadline, checked before any side effect. */
export const check = Effect.fnUntraced(function* (
  identity: RunnerIdentity,
  entityId: string,
  request: Protocol.AttemptRequest
) {
  // Before the signature: another version signs other parts, and "bad signature" would blame the secret.
  const spoken = request.protocol ?? 1
  if (spoken !== Protocol.protocolVersion) {
    return yield* refuse(
      identity,
      `the coordinator speaks cluster protocol ${spoken}, this runner ${Protocol.protocolVersion}: run the same testbed version on both`
    )
  }
  const { mac, ...unsigned } = request
  if (!Envelope.verify(identity.keys.request, Protocol.requestParts(entityId, unsigned), mac)) {
    return yield* refuse(identity, "bad signature (is the coordinator's cluster secret this runner's?)")
  }
  if ((yield* Clock.currentTimeMillis) > request.notAfter) return yield* refuse(identity, "the request has expired")
})

/** What a runner plans once per run and experiment: the experiment's plan and where its files are here. */
export interface Planned {
  readonly prepared: Experiment.Prepared
  readonly located: BundleCache.Located
}

/** Locates the experiment (its bundle, or its file at the coordinator's path), checks it is the one signed, plans it. */
const plan = Effect.fnUntraced(function* (identity: RunnerIdentity, request: Protocol.AttemptRequest) {
  const fs = yield* FileSystem.FileSystem
  // Held (never evicted from the cache) until the attempt's scope closes.
  const located = yield* BundleCache.locate(identity.bundles, request).pipe(
    Effect.mapError((error) => refuse(identity, error.message))
  )
  const bytes = yield* fs
    .readFile(located.file)
    .pipe(Effect.mapError((error) => refuse(identity, `cannot read the experiment ${request.file}: ${error.message}`)))
  if (createHash("sha256").update(bytes).digest("hex") !== request.fileSha256) {
    return yield* refuse(identity, `the experiment ${request.file} on this runner differs from the coordinator's`)
  }
  const prepared = yield* Experiment.prepare(located.file, {
    pluginDirectories: located.pluginDirectories,
    hostPluginDirectories: identity.pluginDirectories
  }).pipe(Effect.mapError((error) => refuse(identity, `cannot plan the experiment here: ${error.message}`)))
  return { prepared, located } satisfies Planned
})

/**
 * The attempt's test and environment, from the plan of its run and experiment (`internal/plans.ts`). Locating,
 * reading and hashing the experiment are in that plan too: the key holds everything they depend on (the run, the
 * bundle, the signed content's sha256), and they read and decoded the same files at every attempt.
 */
const planned = Effect.fnUntraced(function* (identity: RunnerIdentity, request: Protocol.AttemptRequest) {
  const { prepared, located } = yield* identity.plans.get(
    JSON.stringify([
      request.runId,
      request.fileSha256,
      request.bundle ?? null,
      request.file,
      request.pluginDirectories
    ]),
    plan(identity, request)
  )
  const test = prepared.plan.tests.find((candidate) => candidate.name === request.test)
  if (test === undefined) return yield* refuse(identity, `no test named ${JSON.stringify(request.test)} in the plan`)
  const environment = yield* prepared.registry
    .environment(test.environment)
    .pipe(Effect.mapError((error) => refuse(identity, error.message)))
  return { prepared, test, environment, located }
})

/**
 * Runs the attempt on a bus of its own; its events go out as `Events` chunks, held up to `linger`, then its files and
 * how it ended (the request's protocol, signature and age are `handler`'s to check first).
 */
export const execute = Effect.fnUntraced(function* (
  identity: RunnerIdentity,
  request: Protocol.AttemptRequest,
  incarnation: string,
  emit: Emit
) {
  const path = yield* Path.Path
  const plan = yield* planned(identity, request)
  const runDir = path.join(identity.workdir, "runs", request.runId)
  let seq = 0
  let events = 0
  const sendLines = (lines: ReadonlyArray<string>) =>
    Effect.forEach(
      Array.from({ length: Math.ceil(lines.length / eventsPerChunk) }, (_, i) =>
        lines.slice(i * eventsPerChunk, (i + 1) * eventsPerChunk)
      ),
      (chunk) => {
        events += chunk.length
        return emit({ _tag: "Events", incarnation, seq: seq++, lines: chunk, mac: "" })
      },
      { discard: true }
    )
  const lingering = yield* Lingering.make({ linger, limit: eventsPerChunk, send: sendLines })
  // The attempt's own `test.finished` goes last, in `Finished`, after its files: once a coordinator has written
  // it, it has the files too (what `--resume` relies on to call the test finished).
  const held: Array<string> = []
  const executor = identity.executor ?? TestCaseExecutor.TestCaseExecutor.local
  const result = yield* onBus(identity, request, plan, runDir, executor, (batch) => {
    const last = batch.filter((event) => event.type === "test.finished" && event.entityId === request.test)
    // Paths under the runner's bundle copy read as the coordinator's experiment directory.
    const line = (event: TestbedEvent.TestbedEvent) => plan.located.rewrite(JSON.stringify(event))
    held.push(...last.map(line))
    return lingering.add(batch.filter((event) => !last.includes(event)).map(line))
  })
  const dir = path.join(runDir, "tests", plan.test.slug, `attempt-${request.attempt}`)
  yield* sendFiles(identity, incarnation, dir, emit)
  const lines = [...(yield* lingering.take), ...held]
  // `Finished` carries at most a chunk's worth of events; any more go before it.
  yield* sendLines(lines.slice(0, Math.max(0, lines.length - eventsPerChunk)))
  const last = lines.slice(Math.max(0, lines.length - eventsPerChunk))
  events += last.length
  yield* emit({
    _tag: "Finished",
    incarnation,
    status: result.status,
    ...(result.reason === undefined ? {} : { reason: result.reason }),
    durationMs: result.durationMs,
    events,
    lines: last,
    mac: ""
  })
  const fs = yield* FileSystem.FileSystem
  // Its files are with the coordinator now. Its test's and run's directories go too once empty: a runner that runs
  // for weeks piled up an empty `runs/<run>/tests/<test>/` for every test it had run.
  yield* Effect.ignore(fs.remove(dir, { recursive: true }))
  yield* removeEmpty(path.dirname(dir), path.join(identity.workdir, "runs"))
})

/**
 * Removes `dir` and then each parent below `stop` while it is empty (`rmdir`, which refuses a directory that is
 * not: another attempt of the run here keeps what it uses, and one that makes its directory meanwhile makes the
 * missing parents again, as a recursive `mkdir` does).
 */
const removeEmpty = (dir: string, stop: string) =>
  Effect.promise(async () => {
    for (let current = dir; current.startsWith(`${stop}${sep}`); current = dirname(current)) {
      const removed = await rmdir(current).then(
        () => true,
        () => false
      )
      if (!removed) return
    }
  })

/**
 * A certificate of the attempt's own, in `RUNDIR/certs/attempt-XXXXXX/`, removed when the attempt ends (and
 * `certs/` once empty). A local run makes one for the whole run before any test starts; a runner sees a run's attempts
 * one by one, and making the run's one again at each attempt replaced the certificate and key under the attempts
 * running beside it (their handshakes failed, some read a file half written), and left `certs/` behind.
 */
const attemptCertificate = Effect.fnUntraced(function* (runDir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const parent = path.join(runDir, "certs")
  // Another attempt of the run that ends meanwhile may remove `certs/` between the two steps: then again.
  const dir = yield* fs
    .makeDirectory(parent, { recursive: true })
    .pipe(Effect.andThen(fs.makeTempDirectory({ directory: parent, prefix: "attempt-" })), Effect.retry({ times: 3 }))
  yield* Effect.addFinalizer(() =>
    Effect.andThen(
      Effect.ignore(fs.remove(dir, { recursive: true })),
      Effect.promise(() => rmdir(parent).catch(() => undefined))
    )
  )
  return yield* Certificates.selfSigned(dir)
})

/** The executor's `runAttempt` (by default `TestCase.runAttempt`, the code of a local run), on a bus of its own whose batches go to `observe`. */
const onBus = Effect.fnUntraced(function* (
  identity: RunnerIdentity,
  request: Protocol.AttemptRequest,
  { prepared, test, environment, located }: Effect.Success<ReturnType<typeof planned>>,
  runDir: string,
  executor: TestCaseExecutor.TestCaseExecutor["Service"],
  observe: (batch: ReadonlyArray<TestbedEvent.TestbedEvent>) => Effect.Effect<void>
) {
  const stopCause = yield* Ref.make(
    Option.none<{ readonly status: "interrupted" | "timeout"; readonly reason: string }>()
  )
  return yield* Effect.scoped(
    Effect.gen(function* () {
      // Without it every TLS service would fail on a missing {{ cert }}: the refusal says why (openssl missing here).
      const certificate = prepared.plan.needsCertificate
        ? yield* attemptCertificate(runDir).pipe(
            Effect.mapError((error) => refuse(identity, `cannot make the attempt's certificate: ${error.message}`))
          )
        : undefined
      const bus = yield* EventBus.EventBus
      yield* bus.observe(observe)
      return yield* executor.runAttempt(test, request.attempt, {
        runDir,
        experimentDir: located.experimentDir,
        environment,
        pluginSource: (name) =>
          prepared.registry.services.find((registered) => registered.plugin.name === name)?.source ?? "builtin",
        certificate,
        testLevelFastFail: prepared.plan.testLevelFastFail,
        timeout: Duration.millis(request.timeoutMs),
        timeoutMessage: request.timeoutMessage,
        stopCause,
        // The coordinator decides retries and fast-fail; it rewrites `test.finished` with its answer.
        decide: () => ({ willRetry: false, fastFailTriggered: false })
      })
    })
  ).pipe(
    Effect.provide(EventBus.EventBus.layer),
    Effect.catchTag("WriteFailed", (error) =>
      Effect.succeed({ status: "failed" as const, reason: error.message, durationMs: 0, logsPath: "" })
    )
  )
})

/** Every file under the attempt's directory, within the artifact byte budget, packed into `Files` chunks. */
const sendFiles = Effect.fnUntraced(function* (identity: RunnerIdentity, incarnation: string, dir: string, emit: Emit) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const names = yield* fs.readDirectory(dir, { recursive: true }).pipe(Effect.orElseSucceed(() => []))
  let budget = identity.maxArtifactBytes
  let pieces: Array<typeof Protocol.FilePiece.Type> = []
  let bytes = 0
  const send = Effect.suspend(() => {
    if (pieces.length === 0) return Effect.void
    const chunk: Protocol.AttemptChunk = { _tag: "Files", incarnation, pieces, mac: "" }
    pieces = []
    bytes = 0
    return emit(chunk)
  })
  const add = (piece: typeof Protocol.FilePiece.Type) =>
    Effect.map(bytes + piece.bytes.length > pieceBytes ? send : Effect.void, () => {
      pieces.push(piece)
      bytes += piece.bytes.length
    })
  for (const name of [...names].sort()) {
    const file = path.join(dir, name)
    const info = yield* Effect.option(fs.stat(file))
    if (Option.isNone(info) || info.value.type !== "File") continue
    const bytesToRead = Math.min(Number(info.value.size), budget)
    budget -= bytesToRead
    let offset = 0
    // An empty file (or one past the budget) still exists on the coordinator's side.
    if (bytesToRead === 0) yield* add({ path: name, offset: 0, bytes: new Uint8Array() })
    // A small file (an attempt's are mostly logs of a few KiB) in one read: a stream costs a fiber and a pull per piece.
    else if (bytesToRead <= pieceBytes) {
      const read = yield* Effect.option(fs.readFile(file))
      if (Option.isSome(read)) yield* add({ path: name, offset: 0, bytes: read.value.subarray(0, bytesToRead) })
    } else
      yield* fs.stream(file, { bytesToRead, chunkSize: pieceBytes }).pipe(
        Stream.runForEach((piece) => {
          const at = offset
          offset += piece.length
          return add({ path: name, offset: at, bytes: piece })
        }),
        Effect.ignore
      )
  }
  yield* send
})

/** What a chunk weighs in a reply row: the bytes of the files and events it carries. */
const weight = (chunk: Protocol.AttemptChunk): number => {
  switch (chunk._tag) {
    case "Started":
      return 0
    case "Files":
      return chunk.pieces.reduce((sum, piece) => sum + piece.bytes.length, 0)
    case "Events":
    case "Finished":
      return chunk.lines.reduce((sum, line) => sum + line.length, 0)
  }
}

/**
 * `Started`, held until the attempt's first other chunk goes (in the same reply row), or twice `linger` (an attempt
 * silent that long: a slow first planning). Sent
 * at once, it took a reply row of its own: a short test's stream was three rows (`Started`, `Finished`, the end of
 * the request), each stored, sent and acknowledged through Postgres; held, it is two. It is offered synchronously
 * with the flag set, so no chunk can overtake it (it is the first offer: the queue has room).
 */
const heldStarted = (
  queue: Queue.Queue<Rows.Weighed<Protocol.AttemptChunk>, Protocol.AttemptRefused | Cause.Done>,
  sign: (chunk: Protocol.AttemptChunk) => Protocol.AttemptChunk,
  chunk: typeof Protocol.Started.Type
) => {
  let sent = false
  return Effect.sync(() => {
    if (sent) return
    sent = true
    Queue.offerUnsafe(queue, { chunk: sign(chunk), weight: 0 })
  })
}

/**
 * The reply rows of one attempt (entity `entityId`): checked, run on a slot unless `shutdown` says this runner is
 * stopping, every chunk signed, `Started` held (`heldStarted`), at most `pieceBytes` of weight a row.
 */
export const replies = (
  identity: RunnerIdentity,
  entityId: string,
  request: Protocol.AttemptRequest,
  shutdown: Effect.Effect<boolean>
) => {
  const signChunk = (chunk: Protocol.AttemptChunk): Protocol.AttemptChunk => ({
    ...chunk,
    mac: Envelope.sign(identity.keys.chunk, Protocol.chunkParts(entityId, chunk))
  })
  return Stream.callback<Rows.Weighed<Protocol.AttemptChunk>, Protocol.AttemptRefused, Services>(
    (queue) =>
      Effect.gen(function* () {
        yield* check(identity, entityId, request)
        yield* identity.slots.withPermit(
          Effect.gen(function* () {
            // A request queued on the slots may get one while this runner stops: it is the next owner's then.
            if (yield* shutdown) return yield* Effect.never
            const incarnation = `${identity.name}-${process.pid}-${randomBytes(4).toString("hex")}`
            const sendStarted = heldStarted(queue, signChunk, {
              _tag: "Started",
              runner: identity.name,
              host: identity.host,
              incarnation,
              mac: ""
            })
            const emit: Emit = (chunk) =>
              Effect.andThen(sendStarted, Queue.offer(queue, { chunk: signChunk(chunk), weight: weight(chunk) }))
            yield* Ref.update(identity.running, (map) => new Map([...map, [entityId, request.test]]))
            yield* Effect.andThen(
              // Twice the linger: the attempt's first events go at the linger, and `Started` with them.
              Effect.forkScoped(Effect.delay(sendStarted, Duration.times(linger, 2))),
              execute(identity, request, incarnation, emit)
            ).pipe(
              Effect.scoped,
              Effect.ensuring(
                Ref.update(identity.running, (map) => new Map([...map].filter(([id]) => id !== entityId)))
              )
            )
          })
        )
        yield* Queue.end(queue)
      }).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Queue.failCause(queue, cause)
        )
      ),
    { bufferSize: 16 }
  ).pipe((weighed) => Rows.rows(weighed, pieceBytes))
}

/** What an attempt needs from the runner's context. */
type Services = FileSystem.FileSystem | Path.Path | ChildProcessSpawner.ChildProcessSpawner | SqlClient.SqlClient

/** The handler of `RunAttempt` for one entity (one attempt). */
export const handler = Effect.fn("AttemptRunner.handler")(function* (identity: RunnerIdentity) {
  const address = yield* Entity.CurrentAddress
  const sharding = yield* Sharding.Sharding
  const services = yield* Effect.context<Services>()
  return (request: Protocol.AttemptRequest) =>
    replies(identity, String(address.entityId), request, sharding.isShutdown).pipe(Stream.provideContext(services))
})
