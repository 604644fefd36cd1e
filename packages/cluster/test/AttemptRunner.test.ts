// The runner's side of an attempt — what it streams back and in which order: the attempt's events, its files in
// `Files` chunks of at most 256 KiB within the byte budget, then how it ended with its last events (its own
// `test.finished` among them, after the files) — on experiments'
// scripted executor (`TestCaseExecutor.layerTest`) and TestClock: no Postgres, no cluster, no process. Cluster.test.ts
// runs attempts on real runners (integration).
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { type ScriptedExecutor, TestCaseExecutor } from "@testbed/experiments"
import { Clock, Effect, Exit, Fiber, FileSystem, Redacted, Ref, Semaphore, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Protocol from "../src/AttemptProtocol.ts"
import * as AttemptRunner from "../src/AttemptRunner.ts"
import * as BundleCache from "../src/BundleCache.ts"
import * as Envelope from "../src/Envelope.ts"
import * as Plans from "../src/internal/plans.ts"

const quickstart = decodeURIComponent(
  new URL("../../../fixtures/experiments/quickstart.yaml", import.meta.url).pathname
)

const request = (file: string): Protocol.AttemptRequest => ({
  runId: "run-1",
  testKey: "echo-round-trip",
  test: "echo round trip",
  attempt: 1,
  dispatch: 0,
  file,
  fileSha256: createHash("sha256").update(readFileSync(file)).digest("hex"),
  pluginDirectories: [],
  timeoutMs: 30_000,
  timeoutMessage: "test timed out after 30s",
  notAfter: Number.MAX_SAFE_INTEGER,
  mac: ""
})

const keys = Envelope.keys(Redacted.make("the-cluster-secret-1"))

/** A runner in a fresh work directory whose attempts play the scripted executor's script. */
const runner = (maxArtifactBytes: number) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const workdir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-attempt-runner-" })
    return {
      name: "runner-a",
      host: "host-a",
      workdir,
      pluginDirectories: [],
      keys,
      slots: yield* Semaphore.make(1),
      running: yield* Ref.make<ReadonlyMap<string, string>>(new Map()),
      maxArtifactBytes,
      bundles: BundleCache.make({ workdir }),
      executor: yield* TestCaseExecutor.TestCaseExecutor,
      plans: Plans.make()
    } satisfies AttemptRunner.RunnerIdentity
  })

/** Waits for `fiber`, moving clock time on in small steps while the attempt's real file I/O goes on. */
const driven = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function* () {
    while (fiber.pollUnsafe() === undefined) {
      yield* TestClock.adjust("20 millis")
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    }
    return yield* Fiber.await(fiber)
  })

/** Runs `request` on a runner whose attempts play `script`, collecting what it sends back. */
const runOn = (script: ScriptedExecutor.Script, attempt: Protocol.AttemptRequest, maxArtifactBytes = 1024 * 1024) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const identity = yield* runner(maxArtifactBytes)
    const chunks: Array<Protocol.AttemptChunk> = []
    const exit = yield* driven(
      yield* Effect.forkChild(
        AttemptRunner.execute(identity, attempt, "runner-a-1", (chunk) => Effect.sync(() => void chunks.push(chunk)))
      )
    )
    // Nothing of the attempt stays: its directory, and its test's and run's (empty once it is sent back).
    const left = yield* fs.exists(`${identity.workdir}/runs/run-1`)
    return { exit, chunks, left }
  }).pipe(
    Effect.scoped,
    Effect.provide(TestCaseExecutor.TestCaseExecutor.layerTest(script)),
    Effect.provideService(SqlClient.SqlClient, noDatabase)
  )

/**
 * The reply rows of a signed request on a runner whose attempts play `script`, with the clock time of each: of its
 * second attempt, the experiment already planned (a first planning's real I/O is not what is looked at).
 */
const rowsOf = (script: ScriptedExecutor.Script, file: string) =>
  Effect.gen(function* () {
    const identity = yield* runner(1024 * 1024)
    const attempt = Effect.fnUntraced(function* (entityId: string) {
      const { mac: _, ...unsigned } = { ...request(file), protocol: Protocol.protocolVersion }
      const signed = { ...unsigned, mac: Envelope.sign(keys.request, Protocol.requestParts(entityId, unsigned)) }
      const rows: Array<{ readonly at: number; readonly tags: ReadonlyArray<string> }> = []
      const exit = yield* driven(
        yield* AttemptRunner.replies(identity, entityId, signed, Effect.succeed(false)).pipe(
          Stream.chunks,
          Stream.runForEach((row) =>
            Effect.map(Clock.currentTimeMillis, (at) => void rows.push({ at, tags: row.map((chunk) => chunk._tag) }))
          ),
          Effect.forkChild
        )
      )
      return { exit, rows }
    })
    yield* attempt("default/run-1/echo-round-trip/1/0#a")
    return yield* attempt("default/run-1/echo-round-trip/1/1#a")
  }).pipe(
    Effect.scoped,
    Effect.provide(TestCaseExecutor.TestCaseExecutor.layerTest(script)),
    Effect.provideService(SqlClient.SqlClient, noDatabase)
  )

/**
 * These requests carry no bundle, so a runner reads the experiment from the request's path and never asks the
 * database for one: any use of this client is a failure of the test.
 */
const noDatabase = new Proxy({} as SqlClient.SqlClient, {
  get: (_, property) => {
    throw new Error(`this unit test has no database (SqlClient.${String(property)} was used)`)
  }
})

const typesOf = (chunk: Protocol.AttemptChunk) =>
  chunk._tag === "Events" || chunk._tag === "Finished"
    ? chunk.lines.map((line) => (JSON.parse(line) as { type: string }).type)
    : []

describe("AttemptRunner on the scripted executor (TestClock)", () => {
  it.effect("events, then the files in pieces within the budget, then the attempt's test.finished, then the end", () =>
    Effect.gen(function* () {
      const big = new Uint8Array(700 * 1024).fill(7)
      const { exit, chunks, left } = yield* runOn(
        () => ({
          status: "failed",
          reason: "scripted failure",
          duration: "2 seconds",
          files: { "client/stdout.log": big, "server/stderr.log": "" }
        }),
        request(quickstart),
        600 * 1024
      )
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      const tags = chunks.map((chunk) => chunk._tag)
      const firstFiles = tags.indexOf("Files")
      const lastFiles = tags.lastIndexOf("Files")
      // Events (if any were sent before the end), then the files, then `Finished` last.
      assert.isTrue(firstFiles >= 0 && tags.slice(0, firstFiles).every((tag) => tag === "Events"), tags.join())
      assert.isTrue(
        tags.slice(firstFiles, lastFiles + 1).every((tag) => tag === "Files"),
        tags.join()
      )
      assert.deepStrictEqual(tags.slice(lastFiles + 1), ["Finished"])
      // 600 KiB of the 700 KiB log in pieces of at most 256 KiB; the empty file (over budget) still exists.
      const files = chunks.flatMap((chunk) => (chunk._tag === "Files" ? [chunk.pieces] : []))
      assert.deepStrictEqual(
        files.flat().map((piece) => [piece.path, piece.offset, piece.bytes.length]),
        [
          ["client/stdout.log", 0, 262144],
          ["client/stdout.log", 262144, 262144],
          ["client/stdout.log", 524288, 90112],
          ["server/stderr.log", 0, 0]
        ]
      )
      for (const pieces of files) {
        assert.isAtMost(
          pieces.reduce((sum, piece) => sum + piece.bytes.length, 0),
          AttemptRunner.pieceBytes
        )
      }
      // The attempt's own test.finished comes only with `Finished`, after every file.
      const sentBefore = chunks.slice(0, -1).flatMap(typesOf)
      assert.notInclude(sentBefore, "test.finished")
      const finished = chunks.at(-1)
      assert.strictEqual(finished?._tag, "Finished")
      if (finished?._tag !== "Finished") return
      assert.include([...sentBefore, ...typesOf(finished)], "test.started")
      assert.include(typesOf(finished), "test.finished")
      assert.deepStrictEqual([finished.status, finished.reason], ["failed", "scripted failure"])
      // At least the scripted time on the Clock (the driver moves it on while the files are written).
      assert.isAtLeast(finished.durationMs, 2000)
      assert.strictEqual(finished.events, chunks.flatMap(typesOf).length)
      // The files are with the coordinator now: the runner keeps none.
      assert.isFalse(left)
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("an attempt past its timeout ends as timeout with the coordinator's message", () =>
    Effect.gen(function* () {
      const { chunks } = yield* runOn(() => ({ duration: "1 minute" }), { ...request(quickstart), timeoutMs: 1000 })
      const finished = chunks.at(-1)
      assert.deepStrictEqual(finished?._tag === "Finished" ? [finished.status, finished.reason] : [], [
        "timeout",
        "test timed out after 30s"
      ])
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a file whose content differs from the coordinator's is refused before anything runs", () =>
    Effect.gen(function* () {
      let ran = 0
      const { exit, chunks } = yield* runOn(
        () => {
          ran++
          return {}
        },
        { ...request(quickstart), fileSha256: "0".repeat(64) }
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(exit), "differs from the coordinator's")
      assert.deepStrictEqual([ran, chunks.length], [0, 0])
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("Started goes in the row of the attempt's next chunk, never in a row of its own", () =>
    Effect.gen(function* () {
      // Each row is stored, sent and acknowledged through Postgres: a row of Started alone was one more per test.
      // A short attempt is one row (two when the clock passes the events' linger while its files are read).
      const { exit, rows } = yield* rowsOf(() => ({ duration: "10 millis" }), quickstart)
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      assert.strictEqual(rows[0]?.tags[0], "Started")
      assert.isAbove(rows[0]?.tags.length ?? 0, 1, JSON.stringify(rows))
      assert.isAtMost(rows.length, 2, JSON.stringify(rows))
      assert.strictEqual(rows.at(-1)?.tags.at(-1), "Finished")
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
