// NDS scripts at load time, and the per-connection tables and read timeouts of NDS actions on a real server.
import * as Net from "node:net"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, FileSystem } from "effect"
import { module as nds1 } from "../src/nds/Nds1.ts"
import { module as nds2 } from "../src/nds/Nds2.ts"
import type { Plan } from "../src/Plan.ts"
import * as ReplayServer from "../src/ReplayServer.ts"
import { fixtures, layer, load } from "./NdsHarness.ts"

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
      // The loader refuses this script before any client connects…
      const refused = yield* Effect.flip(load(file))
      assert.strictEqual(refused._tag, "ActionInvalid")
      if (refused._tag === "ActionInvalid") assert.strictEqual(refused.path, "recorded_script.scripts[1].scripts[1]")
      // …and with that check off, the server still keeps one table per connection.
      const loaded = yield* load(file, { moduleChecks: false })
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
      const refused = yield* Effect.flip(load(file))
      assert.strictEqual(refused._tag, "ActionInvalid")
      if (refused._tag === "ActionInvalid") assert.strictEqual(refused.path, "recorded_script.scripts[1].scripts[1]")
      assert.deepStrictEqual(problems((yield* load(file, { moduleChecks: false })).plan), [
        {
          path: "recorded_script.scripts[1].scripts[1]",
          reason: 'channel 1 is not registered on this connection before this step (registered: "1")'
        }
      ])
    }).pipe(Effect.scoped, Effect.provide(layer))
  )
})

describe("NDS channels at load time", () => {
  const write = (script: unknown) =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nds-channels-" })
      const file = Path.join(dir, "script.json")
      yield* fs.writeFileString(file, JSON.stringify(script))
      return file
    })

  it.live("a channel used before it is registered is ActionInvalid naming the step, before any client connects", () =>
    Effect.gen(function* () {
      const file = yield* write({
        recorded_script: {
          type: "compound",
          scripts: [
            { type: "command", action: "import", args: ["nds1"] },
            { type: "command", action: "nds1.register_chan", args: ["H1:A", 16, 4, 0, 1000, "V", 1, 1, 0] },
            { type: "command", action: "nds1.gen_sc3_12_1", args: ["H1:A"] },
            { type: "command", action: "nds1.gen_sc3_12_1", args: ["H1:MISSING"] }
          ]
        }
      })
      const error = yield* Effect.flip(load(file))
      assert.strictEqual(error._tag, "ActionInvalid")
      if (error._tag !== "ActionInvalid") return
      assert.strictEqual(error.path, "recorded_script.scripts[3]")
      assert.include(error.reason, "H1:MISSING")
    }).pipe(Effect.scoped, Effect.provide(layer))
  )

  it.live("registered first, the same script loads", () =>
    Effect.gen(function* () {
      const file = yield* write({
        recorded_script: {
          type: "compound",
          scripts: [
            { type: "command", action: "import", args: ["nds1"] },
            { type: "command", action: "nds1.register_chan", args: ["H1:A", 16, 4, 0, 1000, "V", 1, 1, 0] },
            { type: "command", action: "nds1.gen_sc3_12_1", args: ["H1:A"] }
          ]
        }
      })
      const loaded = yield* load(file)
      assert.strictEqual(loaded.plan._tag, "Single")
    }).pipe(Effect.scoped, Effect.provide(layer))
  )
})
