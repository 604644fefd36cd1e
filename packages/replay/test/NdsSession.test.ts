// The NDS fixture sessions replayed to their fixture clients over real sockets, and what goes wrong on purpose.
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, FileSystem } from "effect"
import * as TestLauncher from "../src/TestLauncher.ts"
import { fixtures, layer, load } from "./NdsHarness.ts"

const client = (name: string) => Path.join(fixtures, "nds-clients", name)

/** Replays `script` to the client (with `args`) as `testbed replay test` does. */
const replayTest = (script: string, clientFile: string, args: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const loaded = yield* load(Path.isAbsolute(script) ? script : Path.join(fixtures, script))
    return yield* TestLauncher.run(loaded.plan, {
      program: process.execPath,
      args: [client(clientFile), ...args],
      announce: false,
      stepTimeout: Duration.seconds(30),
      timeout: Duration.minutes(2)
    })
  }).pipe(Effect.provide(layer))

/** A copy of a fixture session with one edit, in a temp dir (the blobs dir is not needed). */
const edited = (script: string, from: string, to: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(Path.join(fixtures, script))
    assert.include(text, from)
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nds-edited-" })
    yield* fs.writeFileString(Path.join(dir, script), text.replace(from, to))
    return Path.join(dir, script)
  }).pipe(Effect.provide(NodeServices.layer))

describe("NDS sessions", () => {
  it.live("the NDS1 session (status channels, net-writer streams) passes its client", () =>
    Effect.gen(function* () {
      const result = yield* replayTest("nds1-session.json", "nds1-client.ts")
      assert.deepStrictEqual(result.outcome.failures, [])
      assert.strictEqual(result.commandExitCode, 0)
      assert.strictEqual(result.exitCode, 0)
      assert.strictEqual(result.outcome.summary.completed, 1)
    })
  )

  it.live("the NDS2 session (revision, get-channels, data blocks, a translated 1.5 answer) passes its client", () =>
    Effect.gen(function* () {
      const result = yield* replayTest("nds2-session.json", "nds2-client.ts")
      assert.deepStrictEqual(result.outcome.failures, [])
      assert.strictEqual(result.exitCode, 0)
    })
  )

  it.live("the clients check what they receive: a script writing a wrong sample fails the client", () =>
    Effect.gen(function* () {
      const one = yield* replayTest(
        yield* edited("nds1-session.json", '"args": ["X1:TEST-CHAN_C", 4, 1]', '"args": ["X1:TEST-CHAN_C", 4, 2]'),
        "nds1-client.ts"
      )
      // The client stops at the wrong answer: its code is 2, and the replay did not run to its end.
      assert.strictEqual(one.commandExitCode, 2)
      assert.notStrictEqual(one.exitCode, 0)
      const two = yield* replayTest(
        yield* edited("nds2-session.json", '"args": [2, 256, 1]', '"args": [2, 256, 2]'),
        "nds2-client.ts"
      )
      assert.strictEqual(two.commandExitCode, 2)
      assert.notStrictEqual(two.exitCode, 0)
    }).pipe(Effect.scoped)
  )

  /** Where the replay saw a ScriptMismatch (the run must fail with exit 1 and that first failure). */
  const mismatch = (script: string, clientFile: string, wrong: string) =>
    Effect.map(replayTest(script, clientFile, ["--wrong", wrong]), (result) => {
      assert.strictEqual(result.exitCode, 1)
      const failure = result.outcome.failures[0]
      return failure?._tag === "ScriptMismatch" ? { step: failure.step, offset: failure.offset } : failure?._tag
    })

  it.live("a wrong byte in a request read by handle_start_net_writer_full is a ScriptMismatch of that step", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* mismatch("nds1-session.json", "nds1-client.ts", "net-writer"), {
        step: "recorded_script.scripts[7]",
        offset: 'start net-writer 1000000000 3 {"X1:TEST-CHAN_A"}'.length
      })
    })
  )

  it.live("a wrong byte in the revision request is a ScriptMismatch of the revision step", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* mismatch("nds2-session.json", "nds2-client.ts", "revision"), {
        step: "recorded_script.scripts[2]",
        offset: "server-protocol-revision ".length
      })
    })
  )

  it.live("a wrong byte in a script step between actions fails as well", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* mismatch("nds1-session.json", "nds1-client.ts", "status"), {
        step: "recorded_script.scripts[3]",
        offset: 20
      })
      assert.deepStrictEqual(yield* mismatch("nds2-session.json", "nds2-client.ts", "get-channels"), {
        step: "recorded_script.scripts[3]",
        offset: 16
      })
    })
  )
})
