import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, FileSystem, Schema } from "effect"
import * as Action from "../src/Action.ts"
import * as BlobStore from "../src/BlobStore.ts"
import type { Plan, Step } from "../src/Plan.ts"
import * as ReplayServer from "../src/ReplayServer.ts"
import { platform, rawClient, tempDir } from "./support.ts"

const exchange = (
  command: string | Uint8Array,
  response: string | Uint8Array,
  path = "s"
): Extract<Step, { _tag: "Exchange" }> => ({
  _tag: "Exchange",
  path,
  command: typeof command === "string" ? Buffer.from(command) : command,
  response: typeof response === "string" ? Buffer.from(response) : response,
  fault: undefined
})

const greeting: Plan = {
  _tag: "Single",
  steps: [
    exchange("", "HELLO\n", "g[0]"),
    exchange("NAME bob\n", "HI bob\n", "g[1]"),
    exchange("QUIT\n", "BYE\n", "g[2]")
  ]
}

const serve = (plan: Plan, options: ReplayServer.ServeOptions = {}) =>
  ReplayServer.serve(plan, { announce: false, stepTimeout: Duration.seconds(20), ...options })

describe("ReplayServer", () => {
  it.live("replays a script byte for byte and counts what it did", () =>
    Effect.gen(function* () {
      const server = yield* serve(greeting, { connections: 1 })
      const client = yield* rawClient(server.port)
      yield* client.write("NAME bob\nQU")
      yield* client.write("IT\n")
      yield* client.end
      const { bytes } = yield* client.received
      assert.strictEqual(bytes.toString(), "HELLO\nHI bob\nBYE\n")
      const outcome = yield* server.done
      assert.deepStrictEqual(outcome.failures, [])
      assert.deepStrictEqual(outcome.summary, {
        connections: 1,
        completed: 1,
        stepsMatched: 3,
        bytesReceived: 14,
        bytesSent: 17,
        faultsInjected: 0
      })
    })
  )

  it.live("fails at the first differing byte with its offset, hex and text", () =>
    Effect.gen(function* () {
      const server = yield* serve(greeting, { connections: 1 })
      const client = yield* rawClient(server.port)
      yield* client.write("NAME bOb\n")
      const { bytes } = yield* client.received
      assert.strictEqual(bytes.toString(), "HELLO\n")
      const outcome = yield* server.done
      const failure = outcome.failures[0]!
      assert.strictEqual(failure._tag, "ScriptMismatch")
      if (failure._tag !== "ScriptMismatch") return
      assert.strictEqual(failure.offset, 6)
      assert.strictEqual(failure.step, "g[1]")
      assert.include(failure.message, "[6f]")
      assert.include(failure.message, "[4f]")
      assert.include(failure.message, '"NAME bOb⏎"')
    })
  )

  it.live("matches raw binary bytes without decoding them", () =>
    Effect.gen(function* () {
      const command = new Uint8Array([0xff, 0xfe, 0x00, 0xc3])
      const server = yield* serve(
        { _tag: "Single", steps: [exchange(command, new Uint8Array([0x80, 0]))] },
        { connections: 2 }
      )
      const ok = yield* rawClient(server.port)
      yield* ok.write(command)
      yield* ok.end
      assert.deepStrictEqual([...(yield* ok.received).bytes], [0x80, 0])
      const bad = yield* rawClient(server.port)
      yield* bad.write(new Uint8Array([0xff, 0xfe, 0x00, 0xc4]))
      yield* bad.received
      const outcome = yield* server.done
      assert.strictEqual(outcome.failures.length, 1)
      const failure = outcome.failures[0]!
      assert.isTrue(failure._tag === "ScriptMismatch" && failure.offset === 3)
    })
  )

  it.live("a client that closes before the end fails with ScriptNotExhausted, at once", () =>
    Effect.gen(function* () {
      const server = yield* serve(greeting, { connections: 1, stepTimeout: Duration.minutes(5) })
      const client = yield* rawClient(server.port)
      yield* client.write("NAME bob\n")
      yield* client.readAtLeast(13)
      yield* client.end
      // The step timeout is 5 minutes: only the close itself can end this quickly.
      const outcome = yield* server.done.pipe(Effect.timeout(Duration.seconds(20)))
      const failure = outcome.failures[0]!
      assert.strictEqual(failure._tag, "ScriptNotExhausted")
      assert.isTrue(failure._tag === "ScriptNotExhausted" && failure.step === "g[2]" && failure.remainingSteps === 1)
    })
  )

  it.live("a client that goes quiet fails with StepTimedOut after the step timeout", () =>
    Effect.gen(function* () {
      const server = yield* serve(greeting, { connections: 1, stepTimeout: Duration.millis(300) })
      const client = yield* rawClient(server.port)
      yield* client.write("NAME b")
      const outcome = yield* server.done
      const failure = outcome.failures[0]!
      assert.isTrue(failure._tag === "StepTimedOut" && failure.offset === 6 && failure.step === "g[1]")
    })
  )

  it.live("a step's timeout is a deadline for the whole step: a client trickling bytes cannot keep it alive", () =>
    Effect.gen(function* () {
      const slow: Plan = { _tag: "Single", steps: [exchange("0123456789abcdefghij", "ok", "slow")] }
      const server = yield* serve(slow, { connections: 1, stepTimeout: Duration.millis(1500) })
      const client = yield* rawClient(server.port)
      // One byte every 150 ms: each read comes well within the timeout, the whole command (3 s) does not.
      yield* Effect.forEach(
        "0123456789abcdefghij".split(""),
        (byte) => Effect.andThen(Effect.sleep(Duration.millis(150)), client.write(byte)),
        { discard: true }
      ).pipe(Effect.forkChild)
      const outcome = yield* server.done
      const failure = outcome.failures[0]!
      assert.strictEqual(failure._tag, "StepTimedOut", failure.message)
      assert.isTrue(failure._tag === "StepTimedOut" && failure.offset < 20 && failure.step === "slow")
    })
  )

  it.live(
    "each step has a deadline of its own: a client answering every step in time passes, however long the run",
    () =>
      Effect.gen(function* () {
        // The hot path arms one timer per run of steps: when it fires in a later step, that step's deadline counts.
        const server = yield* serve(greeting, { connections: 1, stepTimeout: Duration.millis(600) })
        const client = yield* rawClient(server.port)
        yield* client.readAtLeast(6)
        yield* Effect.sleep(Duration.millis(400))
        yield* client.write("NAME bob\n")
        yield* client.readAtLeast(13)
        yield* Effect.sleep(Duration.millis(400))
        yield* client.write("QUIT\n")
        yield* client.end
        assert.strictEqual((yield* client.received).bytes.toString(), "HELLO\nHI bob\nBYE\n")
        assert.deepStrictEqual((yield* server.done).failures, [])
      })
  )

  it.live("a response to a client that reads nothing fails after the step timeout instead of waiting forever", () =>
    Effect.gen(function* () {
      const big: Plan = { _tag: "Single", steps: [exchange("get", Buffer.alloc(32 * 1024 * 1024, 1), "big")] }
      const server = yield* serve(big, { connections: 1, stepTimeout: Duration.seconds(1) })
      const client = yield* rawClient(server.port)
      client.socket.pause()
      yield* client.write("get")
      const outcome = yield* server.done.pipe(Effect.timeout(Duration.seconds(30)))
      const failure = outcome.failures[0]!
      assert.strictEqual(failure._tag, "ScriptNotExhausted", failure.message)
      assert.include(failure.message, "read nothing for 1000 ms")
    })
  )

  it.live("a line an action reads is capped: no newline within the bound is LineTooLong", () =>
    Effect.gen(function* () {
      const lines = Action.makeModule({
        name: "lines",
        state: () => ({}),
        actions: {
          read: Action.make(Schema.Tuple([]), (_args, _state: object, io) => Effect.asVoid(io.readLine))
        }
      })
      const prepared = lines.prepare("read", [])
      if (prepared._tag !== "Success") return assert.fail("invalid")
      const plan: Plan = {
        _tag: "Single",
        steps: [{ _tag: "Action", path: "r", action: "lines.read", prepared: prepared.success }]
      }
      const server = yield* serve(plan, { connections: 1, stepTimeout: Duration.seconds(60) })
      const client = yield* rawClient(server.port)
      yield* client.write(Buffer.alloc(4 * 1024 * 1024, "x"))
      const outcome = yield* server.done.pipe(Effect.timeout(Duration.seconds(30)))
      const failure = outcome.failures[0]!
      assert.strictEqual(failure._tag, "LineTooLong", failure.message)
      assert.include(failure.message, "65536")
    })
  )

  it.live("a plain script no client connected to is not exhausted, unless connections are optional", () =>
    Effect.gen(function* () {
      const unused = yield* serve(greeting)
      const outcome = yield* unused.finish(0)
      const failure = outcome.failures[0]!
      assert.strictEqual(outcome.failures.length, 1)
      assert.isTrue(failure._tag === "ScriptNotExhausted" && failure.connection === 0 && failure.remainingSteps === 3)
      assert.include(failure.message, "never opened")
      const two = yield* serve(greeting, { connections: 2 })
      const client = yield* rawClient(two.port)
      yield* client.write("NAME bob\nQUIT\n")
      yield* client.received
      const missing = (yield* two.finish(Duration.seconds(5))).failures
      assert.deepStrictEqual(
        missing.map((f) => [f._tag, f.connection]),
        [["ScriptNotExhausted", 1]]
      )
      const optional = yield* serve(greeting, { optionalConnections: true })
      assert.deepStrictEqual((yield* optional.finish(0)).failures, [])
      const multi = yield* serve({ _tag: "Multi", connections: [[exchange("a", "b")]] }, { optionalConnections: true })
      assert.deepStrictEqual((yield* multi.finish(0)).failures, [])
      // An empty script has nothing to leave unused.
      assert.deepStrictEqual((yield* (yield* serve({ _tag: "Single", steps: [] })).finish(0)).failures, [])
    })
  )

  it.live("the summary counts the bytes of every connection, those still open when the run ends included", () =>
    Effect.gen(function* () {
      const server = yield* serve(greeting)
      const clients = yield* Effect.forEach(Array.from({ length: 500 }), () => rawClient(server.port), {
        concurrency: 50
      })
      // Half of them run the script to its end, the other half stay after the first answer.
      const [done, open] = [clients.slice(0, 250), clients.slice(250)]
      yield* Effect.forEach(done, (c) => Effect.andThen(c.write("NAME bob\nQUIT\n"), c.received), {
        concurrency: 50,
        discard: true
      })
      yield* Effect.forEach(open, (c) => Effect.andThen(c.write("NAME bob\n"), c.readAtLeast(13)), {
        concurrency: 50,
        discard: true
      })
      const outcome = yield* server.finish(0)
      assert.strictEqual(outcome.summary.connections, 500)
      assert.strictEqual(outcome.summary.completed, 250)
      assert.strictEqual(outcome.summary.bytesReceived, 250 * 14 + 250 * 9)
      assert.strictEqual(outcome.summary.bytesSent, 250 * 17 + 250 * 13)
      assert.strictEqual(outcome.failures.length, 250)
    })
  )

  it.live("bytes beyond the end of the script are a divergence", () =>
    Effect.gen(function* () {
      const server = yield* serve({ _tag: "Single", steps: [exchange("a", "b")] }, { connections: 1 })
      const client = yield* rawClient(server.port)
      yield* client.write("aextra")
      yield* client.received
      const failure = (yield* server.done).failures[0]!
      assert.isTrue(failure._tag === "ScriptMismatch" && failure.step === "(end of script)")
    })
  )

  it.live("serves 100 concurrent connections", () =>
    Effect.gen(function* () {
      const server = yield* serve(greeting, { connections: 100 })
      const clients = yield* Effect.forEach(Array.from({ length: 100 }), () => rawClient(server.port), {
        concurrency: "unbounded"
      })
      yield* Effect.forEach(clients, (c) => c.write("NAME bob\n"), { discard: true })
      yield* Effect.forEach(clients, (c) => c.readAtLeast(13), { concurrency: "unbounded", discard: true })
      yield* Effect.forEach(clients, (c) => Effect.andThen(c.write("QUIT\n"), c.end), { discard: true })
      const all = yield* Effect.forEach(clients, (c) => c.received, { concurrency: "unbounded" })
      for (const r of all) assert.strictEqual(r.bytes.toString(), "HELLO\nHI bob\nBYE\n")
      const outcome = yield* server.done
      assert.deepStrictEqual(outcome.failures, [])
      assert.strictEqual(outcome.summary.completed, 100)
      assert.strictEqual(outcome.summary.stepsMatched, 300)
    })
  )

  it.live("compound_multi: the k-th connection runs the k-th script; missing and extra connections fail", () =>
    Effect.gen(function* () {
      const plan: Plan = { _tag: "Multi", connections: [[exchange("one", "1")], [exchange("two", "2")]] }
      const server = yield* serve(plan)
      const first = yield* rawClient(server.port)
      const second = yield* rawClient(server.port)
      yield* second.write("two")
      yield* first.write("one")
      yield* Effect.all([first.end, second.end])
      assert.strictEqual((yield* first.received).bytes.toString(), "1")
      assert.strictEqual((yield* second.received).bytes.toString(), "2")
      const outcome = yield* server.done
      assert.deepStrictEqual(outcome.failures, [])
      assert.strictEqual(outcome.summary.completed, 2)

      const partial = yield* serve(plan)
      const only = yield* rawClient(partial.port)
      yield* only.write("one")
      yield* only.received
      const finished = yield* partial.finish(Duration.seconds(5))
      const missing = finished.failures[0]!
      assert.isTrue(missing._tag === "ScriptNotExhausted" && missing.connection === 1)

      const extra = yield* serve({ _tag: "Multi", connections: [[]] })
      const a = yield* rawClient(extra.port)
      yield* a.received
      const b = yield* rawClient(extra.port)
      yield* b.received
      const outcome3 = yield* extra.done
      assert.strictEqual(outcome3.failures.find((f) => f._tag === "UnexpectedConnection")?.connection, 1)
    })
  )

  it.live("sleep steps wait; actions read through the matcher, write, and keep per-connection state", () =>
    Effect.gen(function* () {
      const counter = Action.makeModule({
        name: "counter",
        state: () => ({ n: 0 }),
        actions: {
          hello: Action.make(Schema.Tuple([Schema.String]), ([word], state: { n: number }, io) =>
            Effect.gen(function* () {
              yield* io.expect(`${word}\n`)
              const line = yield* io.readLine
              state.n += 1
              yield* io.write(`${state.n}:${Buffer.from(line).toString()}`)
            })
          )
        }
      })
      const hello = (path: string): Step => {
        const prepared = counter.prepare("hello", ["hi"])
        if (prepared._tag !== "Success") throw new Error("invalid")
        return { _tag: "Action", path, action: "counter.hello", prepared: prepared.success }
      }
      const plan: Plan = {
        _tag: "Single",
        steps: [hello("a"), { _tag: "Sleep", path: "s", duration: Duration.millis(10) }, hello("b")]
      }
      const server = yield* serve(plan, { connections: 2 })
      for (let i = 0; i < 2; i++) {
        const client = yield* rawClient(server.port)
        yield* client.write("hi\nx\nhi\ny\n")
        yield* client.end
        assert.strictEqual((yield* client.received).bytes.toString(), "1:x\n2:y\n")
      }
      const bad = yield* serve(plan, { connections: 1 })
      const client = yield* rawClient(bad.port)
      yield* client.write("ho\n")
      yield* client.received
      const failure = (yield* bad.done).failures[0]!
      assert.isTrue(failure._tag === "ScriptMismatch" && failure.step === "a" && failure.offset === 1)
    })
  )

  describe("faults", () => {
    const big = Buffer.alloc(1000, "x")
    const plan: Plan = { _tag: "Single", steps: [exchange("get", big), exchange("again", "ok")] }

    it.live("delay and chunk still deliver every byte", () =>
      Effect.gen(function* () {
        const server = yield* serve(plan, {
          connections: 1,
          faults: [{ step: 1, fault: { delay: 0.05, chunk: { size: 100, pause: 0.005 } } }]
        })
        const client = yield* rawClient(server.port)
        const chunks: Array<number> = []
        client.socket.on("data", (c: Buffer) => chunks.push(c.length))
        yield* client.write("get")
        yield* client.readAtLeast(1000)
        yield* client.write("again")
        yield* client.end
        assert.strictEqual((yield* client.received).bytes.length, 1002)
        assert.isAtLeast(chunks.length, 10)
        const outcome = yield* server.done
        assert.deepStrictEqual(outcome.failures, [])
        assert.strictEqual(outcome.summary.faultsInjected, 1)
      })
    )

    it.live("truncate sends the first bytes and closes; reset sends RST", () =>
      Effect.gen(function* () {
        const truncating = yield* serve(plan, {
          connections: 1,
          faults: [{ step: undefined, fault: { truncate: 10 } }]
        })
        const a = yield* rawClient(truncating.port)
        yield* a.write("get")
        const cut = yield* a.received
        assert.strictEqual(cut.bytes.length, 10)
        assert.strictEqual(cut.error, undefined)
        assert.deepStrictEqual((yield* truncating.done).failures, [])

        const resetting = yield* serve(plan, { connections: 1, faults: [{ step: 2, fault: { reset: true } }] })
        const b = yield* rawClient(resetting.port)
        yield* b.write("get")
        yield* b.readAtLeast(1000)
        yield* b.write("again")
        const reset = yield* b.received
        assert.strictEqual(reset.error, "ECONNRESET")
        assert.strictEqual(reset.bytes.length, 1000)
      })
    )

    it.live("a fault given in the script applies to its step", () =>
      Effect.gen(function* () {
        const own: Plan = { _tag: "Single", steps: [{ ...exchange("get", big), fault: { truncate: 3 } }] }
        const server = yield* serve(own, { connections: 1 })
        const client = yield* rawClient(server.port)
        yield* client.write("get")
        assert.strictEqual((yield* client.received).bytes.toString(), "xxx")
      })
    )
  })

  it.live(
    "a blob too large for memory is streamed from its file, faults included; a file changed since it was verified fails",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const fs = yield* FileSystem.FileSystem
        const store = yield* BlobStore.make({ dir })
        const content = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251))
        const name = yield* store.put(content)
        // keepInMemory 0: the step holds the blob, not its bytes.
        const blob = yield* store.open(name)
        assert.isUndefined(blob.bytes)
        const plan: Plan = { _tag: "Single", steps: [{ ...exchange("get", new Uint8Array(0), "big"), response: blob }] }
        const fetch = (options: ReplayServer.ServeOptions) =>
          Effect.gen(function* () {
            const server = yield* serve(plan, { connections: 1, ...options })
            const client = yield* rawClient(server.port)
            yield* client.write("get")
            yield* client.end
            return { received: (yield* client.received).bytes, outcome: yield* server.done }
          })
        const plain = yield* fetch({})
        assert.isTrue(plain.received.equals(content))
        assert.strictEqual(plain.outcome.summary.bytesSent, content.length)
        const chunked = yield* fetch({ faults: [{ step: undefined, fault: { chunk: { size: 7777 } } }] })
        assert.isTrue(chunked.received.equals(content))
        const cut = yield* fetch({ faults: [{ step: undefined, fault: { truncate: 100_001 } }] })
        assert.isTrue(cut.received.equals(content.subarray(0, 100_001)))
        yield* fs.writeFile(Path.join(dir, `${name}.gz`), Zlib.gzipSync(Buffer.from("swapped")))
        const changed = yield* fetch({})
        assert.strictEqual(changed.outcome.failures[0]?._tag, "ResponseUnreadable")
        assert.include(changed.outcome.failures[0]?.message ?? "", "changed since it was verified")
      }).pipe(Effect.provide(platform))
  )

  it.live("closing the scope stops the server and its connections", () =>
    Effect.gen(function* () {
      const ready = yield* Deferred.make<number>()
      const fiber = yield* Effect.forkChild(
        Effect.scoped(
          Effect.gen(function* () {
            const server = yield* serve(greeting)
            yield* Deferred.succeed(ready, server.port)
            return yield* Effect.never
          })
        )
      )
      const port = yield* Deferred.await(ready)
      const client = yield* rawClient(port)
      yield* client.readAtLeast(6)
      yield* Fiber.interrupt(fiber)
      yield* client.received
      const refused = yield* Effect.exit(rawClient(port))
      assert.strictEqual(refused._tag, "Failure")
    })
  )
})
