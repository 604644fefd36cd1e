import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer, Result, Schema, Stream } from "effect"
import * as Event from "../src/Event.ts"
import { EventBus } from "../src/EventBus.ts"
import * as EventLog from "../src/EventLog.ts"
import * as Observers from "../src/Observers.ts"
import { TestbedEvent } from "../src/TestbedEvent.ts"

const tempFile = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-eventlog-" })
  return `${dir}/run/events.jsonl`
})

const readAll = (path: string, options?: EventLog.ReadOptions) => Stream.runCollect(EventLog.read(path, options))

const writeAll = (path: string, events: ReadonlyArray<Event.Event>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const log = yield* EventLog.EventLog
      for (const event of events) yield* log.append(event)
    }).pipe(Effect.provide(EventLog.EventLog.layer(path)))
  )

// Events of every known family, with payloads generated from their schemas.
const AnyEvent = TestbedEvent

describe("EventLog", () => {
  it.effect.prop(
    "any sequence of events written to the log reads back equal",
    [Schema.Array(AnyEvent)],
    ([events]) =>
      Effect.gen(function* () {
        const path = yield* tempFile
        yield* writeAll(path, events)
        const back = yield* readAll(path)
        assert.deepStrictEqual(back, JSON.parse(JSON.stringify(events)))
        // Typed decoding of what was read gives back the typed events.
        const typed = yield* Effect.forEach(back, (e) => Schema.decodeUnknownEffect(TestbedEvent)(e))
        assert.strictEqual(typed.length, events.length)
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 60_000, arbitrary: { runs: 30 } }
  )

  it.effect("a truncated last line is reported and skipped; no earlier line is lost", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* tempFile
      const events = yield* Effect.forEach([1, 2, 3], (i) =>
        Event.make({ type: "test.started", entityType: "test", entityId: `t${i}`, data: { name: `t${i}`, attempt: 1 } })
      )
      yield* writeAll(path, events)
      const whole = yield* fs.readFileString(path)
      // A crash in the middle of writing a fourth line.
      yield* fs.writeFileString(path, `${whole}{"id":"x","type":"test.fin`)
      const back = yield* readAll(path)
      assert.deepStrictEqual(
        back.map((e) => e.entityId),
        ["t1", "t2", "t3"]
      )
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("a complete last line without its newline still counts", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* tempFile
      const e = yield* Event.make({
        type: "plugin.loaded",
        entityType: "plugin",
        entityId: "p",
        data: { name: "p", kind: "service", source: "built-in" }
      })
      yield* fs.makeDirectory(path.slice(0, path.lastIndexOf("/")), { recursive: true })
      yield* fs.writeFileString(path, JSON.stringify(e))
      assert.deepStrictEqual(yield* readAll(path), [e])
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("a broken line in the middle is a typed error naming the line, or skipped when asked", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* tempFile
      const e = yield* Event.make({
        type: "test.started",
        entityType: "test",
        entityId: "t",
        data: { name: "t", attempt: 1 }
      })
      yield* fs.makeDirectory(path.slice(0, path.lastIndexOf("/")), { recursive: true })
      yield* fs.writeFileString(path, `${JSON.stringify(e)}\n{"not":"an event"}\n${JSON.stringify(e)}\n`)
      const error = yield* Effect.flip(readAll(path))
      assert.strictEqual(error._tag, "EventLogLineInvalid")
      if (error._tag === "EventLogLineInvalid") assert.strictEqual(error.line, 2)
      assert.strictEqual((yield* readAll(path, { onInvalidLine: "skip" })).length, 2)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect("a missing file is EventLogUnavailable naming the path", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(readAll("/nonexistent/testbed/events.jsonl"))
      assert.strictEqual(error._tag, "EventLogUnavailable")
      assert.strictEqual(error.path, "/nonexistent/testbed/events.jsonl")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("the storage observer writes every event published, including those just before its scope closes", () =>
    Effect.gen(function* () {
      const path = yield* tempFile
      const total = 20_000
      yield* Effect.gen(function* () {
        const bus = yield* EventBus
        for (let i = 0; i < total; i++) {
          yield* bus.emit({
            type: "step.started",
            entityId: `s${i}`,
            data: { test: "t", index: i, kind: "wait" }
          })
        }
      }).pipe(Effect.provide(Observers.storage(path).pipe(Layer.provideMerge(EventBus.layerWith({ capacity: 256 })))))
      const back = yield* readAll(path)
      assert.strictEqual(back.length, total)
      assert.deepStrictEqual(
        back.map((e) => e.entityId),
        Array.from({ length: total }, (_, i) => `s${i}`)
      )
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect(
    "a write that fails (a full disk) is WriteFailed with the file and ENOSPC; the run learns it, publishers never wait",
    () =>
      Effect.gen(function* () {
        // /dev/full: every write fails as on a full disk.
        const failed = yield* Effect.gen(function* () {
          const bus = yield* EventBus
          const storage = yield* EventLog.EventLogStorage
          // Far more events than the bus holds: an observer that stopped taking them would block this loop.
          for (let i = 0; i < 2_000; i++) {
            yield* bus.emit({
              type: "step.started",
              entityId: `s${i}`,
              data: { test: "t", index: i, kind: "wait" }
            })
          }
          return yield* Effect.flip(storage.failed)
        }).pipe(
          Effect.provide(Observers.storage("/dev/full").pipe(Layer.provideMerge(EventBus.layerWith({ capacity: 64 }))))
        )
        assert.strictEqual(failed._tag, "WriteFailed")
        assert.strictEqual(failed.path, "/dev/full")
        assert.strictEqual(failed.code, "ENOSPC")
        assert.strictEqual(failed.message, "cannot write /dev/full: no space left on device (ENOSPC)")
        // The same through the log service itself: appendAll writes before returning, so it fails.
        const event = yield* Event.make({
          type: "test.started",
          entityType: "test",
          entityId: "t",
          data: { name: "t", attempt: 1 }
        })
        const direct = yield* Effect.flip(
          EventLog.EventLog.use((log) => log.appendAll([event])).pipe(
            Effect.provide(EventLog.EventLog.layer("/dev/full"))
          )
        )
        assert.strictEqual(direct._tag, "WriteFailed")
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
  )

  it.effect.prop(
    "decodeText: a whole log's text reads back as the events written, blank lines skipped",
    [Schema.Array(AnyEvent)],
    ([events]) =>
      Effect.sync(() => {
        const text = events.map((event) => `${JSON.stringify(event)}\n\n`).join("")
        const back = EventLog.decodeText(text, "run/events.jsonl")
        assert.isTrue(Result.isSuccess(back))
        assert.deepStrictEqual(
          Result.getOrThrow(back),
          events.map((event) => Schema.decodeUnknownSync(TestbedEvent)(JSON.parse(JSON.stringify(event))))
        )
      })
  )

  it("decodeText: the first line that is not an event of the union fails, naming the file and line", () => {
    const known = JSON.stringify({
      id: "e1",
      type: "experiment.finished",
      entityType: "experiment",
      entityId: "x",
      timestamp: "2026-01-01T00:00:00.000Z",
      data: { status: "completed" }
    })
    const ok = EventLog.decodeText(`${known}\n`, "run/events.jsonl")
    assert.isTrue(Result.isSuccess(ok), Result.isFailure(ok) ? ok.failure.message : "")
    const unknown = known.replace("experiment.finished", "experiment.renamed")
    for (const [text, line, reason] of [
      [`${known}\n{not json\n`, 2, "invalid JSON"],
      [`${known}\n\n${unknown}\n`, 3, ""]
    ] as const) {
      const result = EventLog.decodeText(text, "run/events.jsonl")
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) {
        assert.strictEqual(result.failure.line, line)
        assert.strictEqual(result.failure.path, "run/events.jsonl")
        assert.include(result.failure.reason, reason)
      }
    }
  })
})
