// The NDS fixture sessions replayed to their fixture clients over real sockets, and what goes wrong on purpose.
import * as Net from "node:net"
import * as Path from "node:path"
import { NodeServices } from "@effect/platform-node"
import { LocalRunner } from "@testbed/commands"
import { EventBus } from "@testbed/events"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, FileSystem, Layer } from "effect"
import { ActionRegistry } from "../src/Action.ts"
import { BlobStore } from "../src/BlobStore.ts"
import { module as nds1 } from "../src/nds/Nds1.ts"
import { module as nds2 } from "../src/nds/Nds2.ts"
import type { Plan } from "../src/Plan.ts"
import * as ReplayServer from "../src/ReplayServer.ts"
import * as ScriptLoader from "../src/ScriptLoader.ts"
import * as TestLauncher from "../src/TestLauncher.ts"

const repo = Path.resolve(import.meta.dirname, "../../..")
const fixtures = Path.join(repo, "fixtures/replay")
const client = (name: string) => Path.join(fixtures, "nds-clients", name)

const layer = Layer.mergeAll(
  ActionRegistry.layer([nds1, nds2]),
  BlobStore.layer({ dir: Path.join(fixtures, "blobs") }),
  LocalRunner.layer.pipe(Layer.provide(EventBus.EventBus.layer))
).pipe(Layer.provideMerge(NodeServices.layer))

const load = (file: string) => ScriptLoader.load({ file })

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

/** Connects, sends `request`, and collects what the server sends until it closes the connection. */
const ask = (port: number, request: string) =>
  Effect.callback<Buffer>((resume) => {
    const chunks: Array<Buffer> = []
    const socket = Net.connect({ host: "127.0.0.1", port }, () => socket.write(request))
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", () => undefined)
    socket.once("close", () => resume(Effect.succeed(Buffer.concat(chunks))))
    return Effect.sync(() => socket.destroy())
  })

describe("NDS reads time out as script steps do", () => {
  it.live("a client that stops inside the revision request fails the step with StepTimedOut", () =>
    Effect.gen(function* () {
      const loaded = yield* load(Path.join(fixtures, "nds2-session.json"))
      const server = yield* ReplayServer.serve(loaded.plan, { announce: false, stepTimeout: Duration.millis(300) })
      const socket = yield* Effect.acquireRelease(
        Effect.sync(() =>
          Net.connect({ host: "127.0.0.1", port: server.port }, () => socket.write("server-protocol-"))
        ),
        (s) => Effect.sync(() => s.destroy())
      )
      socket.on("error", () => undefined)
      const outcome = yield* server.done
      const failure = outcome.failures[0]!
      assert.strictEqual(failure._tag, "StepTimedOut")
      if (failure._tag !== "StepTimedOut") return
      assert.strictEqual(failure.step, "recorded_script.scripts[2]")
      assert.strictEqual(failure.offset, "server-protocol-".length)
    }).pipe(Effect.scoped, Effect.provide(layer))
  )

  it.live("a client that stops inside a net-writer request fails the step with StepTimedOut", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nds-timeout-" })
      const file = Path.join(dir, "script.json")
      yield* fs.writeFileString(
        file,
        JSON.stringify({
          recorded_script: {
            type: "compound",
            scripts: [
              { type: "command", action: "import", args: ["nds1"] },
              { type: "command", action: "nds1.handle_start_net_writer_full", args: [1] }
            ]
          }
        })
      )
      const loaded = yield* load(file)
      const server = yield* ReplayServer.serve(loaded.plan, { announce: false, stepTimeout: Duration.millis(300) })
      const socket = yield* Effect.acquireRelease(
        Effect.sync(() =>
          Net.connect({ host: "127.0.0.1", port: server.port }, () => socket.write("start net-writer 12"))
        ),
        (s) => Effect.sync(() => s.destroy())
      )
      socket.on("error", () => undefined)
      const outcome = yield* server.done
      assert.strictEqual(outcome.failures[0]?._tag, "StepTimedOut")
      assert.strictEqual(outcome.failures[0]?.connection, 0)
    }).pipe(Effect.scoped, Effect.provide(layer))
  )
})

describe("NDS channel tables", () => {
  it.live("are per connection: a channel registered on one connection is unknown on the next", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nds-tables-" })
      const file = Path.join(dir, "script.json")
      const sc3 = { type: "command", action: "nds1.gen_sc3_12_1", args: ["X1:A"] }
      yield* fs.writeFileString(
        file,
        JSON.stringify({
          recorded_script: {
            type: "compound_multi",
            scripts: [
              {
                type: "compound",
                scripts: [
                  { type: "command", action: "import", args: ["nds1"] },
                  { type: "command", action: "nds1.register_chan", args: ["X1:A", 16, 4, 0, 0, "", 1, 1, 0] },
                  { type: "script", command: "first\n", response: "" },
                  sc3
                ]
              },
              { type: "compound", scripts: [{ type: "script", command: "second\n", response: "" }, sc3] }
            ]
          }
        })
      )
      const loaded = yield* load(file)
      const server = yield* ReplayServer.serve(loaded.plan, { announce: false, stepTimeout: Duration.seconds(30) })
      const first = yield* ask(server.port, "first\n")
      assert.strictEqual(first.toString(), "X1:A\n16\n4\n0\n0\n\n1.0\n1.0\n0.0\n")
      const second = yield* ask(server.port, "second\n")
      assert.strictEqual(second.length, 0)
      const outcome = yield* server.done
      assert.strictEqual(outcome.failures.length, 1)
      const failure = outcome.failures[0]!
      assert.strictEqual(failure._tag, "ActionFailed")
      if (failure._tag !== "ActionFailed") return
      assert.strictEqual(failure.connection, 1)
      assert.strictEqual(failure.step, "recorded_script.scripts[1].scripts[1]")
      assert.include(failure.reason, 'channel "X1:A" is not registered on this connection (registered: none)')
    }).pipe(Effect.scoped, Effect.provide(layer))
  )
})

describe("NDS scripts at load time", () => {
  const loadText = (files: Record<string, unknown>) =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nds-load-" })
      for (const [name, json] of Object.entries(files))
        yield* fs.writeFileString(Path.join(dir, name), JSON.stringify(json))
      return yield* Effect.flip(load(Path.join(dir, "script.json")))
    }).pipe(Effect.scoped, Effect.provide(layer))

  const script = (...steps: ReadonlyArray<unknown>) => ({
    "script.json": {
      recorded_script: { type: "compound", scripts: [{ type: "command", action: "import", args: ["nds1"] }, ...steps] }
    }
  })

  it.live("a wrong argument count is ActionInvalid naming the step and the arguments", () =>
    Effect.gen(function* () {
      const error = yield* loadText(script({ type: "command", action: "nds1.register_chan", args: ["X1:A", 16, 4] }))
      assert.strictEqual(error._tag, "ActionInvalid")
      assert.include(error.message, "at recorded_script.scripts[1]")
      assert.include(error.message, "takes 9 arguments (name rate type tp_num group unit gain slope offset), got 3")
    })
  )

  it.live("a wrong argument type is ActionInvalid naming the argument", () =>
    Effect.gen(function* () {
      const error = yield* loadText(script({ type: "command", action: "nds1.data-header", args: ["X1:A", 1, 1, 0] }))
      assert.strictEqual(error._tag, "ActionInvalid")
      assert.include(error.message, "argument 1 (channels) must be a list of channel names")
    })
  )

  it.live("a response on an action that takes none is refused", () =>
    Effect.gen(function* () {
      const error = yield* loadText(
        script({ type: "command", action: "nds1.termination-block", args: [], response_hex: "00" })
      )
      assert.include(error.message, "a response on the step is passed as a last argument")
    })
  )

  it.live("recorded bytes that are not an NDS2 get-data answer are refused", () =>
    Effect.gen(function* () {
      const error = yield* loadText({
        "script.json": {
          recorded_script: {
            type: "compound",
            scripts: [
              { type: "command", action: "import", args: ["nds2"] },
              { type: "command", action: "nds2.translate_nds2_1_5_get_data_block", args: [], response_hex: "30303030" }
            ]
          }
        }
      })
      assert.strictEqual(error._tag, "ActionInvalid")
      assert.include(error.message, "at least 16")
    })
  )

  // The modules' check over a loaded plan: the loader does not call it yet (see the README), so these load
  // the script and run the check on what it compiled.
  const problems = (plan: Plan) =>
    (plan._tag === "Single" ? [plan.steps] : plan.connections).flatMap((steps) => {
      const actions = steps.flatMap((step) => (step._tag === "Action" ? [step] : []))
      return [nds1.check(actions), nds2.check(actions)].filter((p) => p !== undefined)
    })

  it.live("the fixture sessions name no channel before registering it", () =>
    Effect.gen(function* () {
      for (const file of ["nds1-session.json", "nds2-session.json"]) {
        assert.deepStrictEqual(problems((yield* load(Path.join(fixtures, file))).plan), [])
      }
    }).pipe(Effect.provide(layer))
  )

  it.live("a channel used before it is registered on its connection is found, naming the step", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nds-check-" })
      const file = Path.join(dir, "script.json")
      const register = (id: unknown) => ({
        type: "command",
        action: "nds2.register_chan",
        args: [id, "X1:A", "online", 16, "real_4"]
      })
      yield* fs.writeFileString(
        file,
        JSON.stringify({
          recorded_script: {
            type: "compound_multi",
            scripts: [
              {
                type: "compound",
                scripts: [
                  { type: "command", action: "import", args: ["nds2"] },
                  register(1),
                  { type: "command", action: "nds2.get-channels", args: [1] }
                ]
              },
              {
                type: "compound",
                scripts: [register("1"), { type: "command", action: "nds2.write-data", args: [1, 1, 0] }]
              }
            ]
          }
        })
      )
      assert.deepStrictEqual(problems((yield* load(file)).plan), [
        {
          path: "recorded_script.scripts[1].scripts[1]",
          reason: 'channel 1 is not registered on this connection before this step (registered: "1")'
        }
      ])
    }).pipe(Effect.scoped, Effect.provide(layer))
  )
})
