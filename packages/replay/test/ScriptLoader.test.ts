import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import * as Action from "../src/Action.ts"
import { fixtures, inMemory, loadIn, platform, tempDir, writeFiles } from "./support.ts"

const step = (command: string, response: string) => ({ type: "script", command, response })

const failure = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(effect)
    if (Exit.isSuccess(exit)) return assert.fail("expected the load to fail")
    const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
    return reason?._tag === "Fail"
      ? (reason.error as { _tag: string; message: string })
      : assert.fail(String(exit.cause))
  })

const counter = Action.makeModule({
  name: "counter",
  state: () => ({ n: 0 }),
  actions: {
    hello: Action.make(Schema.Tuple([Schema.String]), ([word], state: { n: number }, io) =>
      Effect.gen(function* () {
        yield* io.expect(`${word}\n`)
        state.n += 1
        yield* io.write(`${state.n}\n`)
      })
    )
  }
})

describe("ScriptLoader", () => {
  it.live("flattens compound and named scripts and resolves externals relative to the including file", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* writeFiles(dir, {
        "main.json": {
          recorded_script: {
            type: "compound",
            scripts: [
              { type: "external", file: "parts/common.json" },
              step("a", "1"),
              { type: "named", name: "shared" },
              { type: "named", name: "local" },
              { type: "nop" },
              { type: "comment" },
              { type: "command", action: "sleep", args: ["0.01"] }
            ]
          },
          local: step("l", "main wins")
        },
        "parts/common.json": {
          shared: {
            type: "compound",
            scripts: [
              { type: "external", file: "deeper/more.json" },
              { type: "named", name: "deep" }
            ]
          },
          local: step("l", "external loses")
        },
        "parts/deeper/more.json": { deep: step("d", "4") }
      })
      const loaded = yield* loadIn(dir, "main.json")
      assert.strictEqual(loaded.plan._tag, "Single")
      const steps = loaded.plan._tag === "Single" ? loaded.plan.steps : []
      assert.deepStrictEqual(
        steps.map((s) =>
          s._tag === "Exchange" ? `${Buffer.from(s.command)}=${Buffer.from(inMemory(s.response))}` : s._tag
        ),
        ["a=1", "d=4", "l=main wins", "Sleep"]
      )
      assert.include(steps[1]!.path, "recorded_script.scripts[2] -> shared.scripts[1] -> deep")
      assert.deepStrictEqual(loaded.names, ["recorded_script", "local", "shared", "deep"])
    }).pipe(Effect.provide(platform))
  )

  it.live("rejects a cycle of named scripts at load time, spelling it out", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* writeFiles(dir, {
        "s.json": {
          recorded_script: { type: "compound", scripts: [step("x", "y"), { type: "named", name: "a" }] },
          a: { type: "compound", scripts: [{ type: "named", name: "b" }] },
          b: { type: "named", name: "a" }
        }
      })
      const error = yield* failure(loadIn(dir, "s.json"))
      assert.strictEqual(error._tag, "ScriptCycle")
      assert.include(error.message, "a -> b -> a")
      const direct = yield* failure(loadIn(dir, "s.json", { name: "b" }))
      assert.include(direct.message, "b -> a -> b")
    }).pipe(Effect.provide(platform))
  )

  it.live("refuses an external path that leaves the script root, unless allowed", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* writeFiles(dir, {
        "outside.json": { x: step("o", "p") },
        "root/s.json": {
          recorded_script: {
            type: "compound",
            scripts: [
              { type: "external", file: "../outside.json" },
              { type: "named", name: "x" }
            ]
          }
        }
      })
      const root = Path.join(dir, "root")
      const error = yield* failure(loadIn(root, "s.json"))
      assert.strictEqual(error._tag, "ScriptPathEscapes")
      assert.include(error.message, "../outside.json")
      const allowed = yield* loadIn(root, "s.json", { allowOutsideRoot: true })
      assert.strictEqual(allowed.plan._tag === "Single" ? allowed.plan.steps.length : 0, 1)
    }).pipe(Effect.provide(platform))
  )

  it.live("loads nested externals written for the older tool (paths from the top script's directory)", () =>
    Effect.gen(function* () {
      // fixtures/replay/nested: parts/greeting.json names "parts/words.json", as the older tool resolved it.
      const nested = Path.join(fixtures, "nested")
      const loaded = yield* loadIn(nested, "session.json")
      const steps = loaded.plan._tag === "Single" ? loaded.plan.steps : []
      assert.deepStrictEqual(
        steps.map((s) => (s._tag === "Exchange" ? Buffer.from(s.command).toString() : s._tag)),
        ["", "NAME testbed\n", "QUIT\n"]
      )
      assert.deepStrictEqual(
        loaded.files.map((f) => Path.relative(nested, Path.resolve(f))),
        ["session.json", Path.join("parts", "greeting.json"), Path.join("parts", "words.json")]
      )
    }).pipe(Effect.provide(platform))
  )

  it.live("an external resolves beside its including file first, then in the top script's directory, confined", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const root = Path.join(dir, "root")
      yield* writeFiles(dir, {
        "secret.json": { x: step("s", "secret") },
        "root/top.json": {
          recorded_script: {
            type: "compound",
            scripts: [
              { type: "external", file: "parts/a.json" },
              { type: "named", name: "which" }
            ]
          }
        },
        "root/parts/a.json": { a: { type: "external", file: "b.json" } },
        // Both exist: the one beside parts/a.json wins.
        "root/parts/b.json": { which: step("w", "beside the including file") },
        "root/b.json": { which: step("w", "top directory") },
        "root/escape.json": {
          recorded_script: { type: "compound", scripts: [{ type: "external", file: "parts/up.json" }] }
        },
        // ../secret.json from parts/ is root/secret.json (missing); from the top directory it leaves the root.
        "root/parts/up.json": { u: { type: "external", file: "../secret.json" } },
        "root/missing.json": {
          recorded_script: { type: "compound", scripts: [{ type: "external", file: "parts/none.json" }] }
        },
        "root/parts/none.json": { n: { type: "external", file: "nowhere.json" } }
      })
      const loaded = yield* loadIn(root, "top.json")
      const steps = loaded.plan._tag === "Single" ? loaded.plan.steps : []
      const first = steps[0]
      assert.strictEqual(
        first?._tag === "Exchange" && first.response instanceof Uint8Array
          ? Buffer.from(first.response).toString()
          : "",
        "beside the including file"
      )
      const escapes = yield* failure(loadIn(root, "escape.json"))
      assert.strictEqual(escapes._tag, "ScriptPathEscapes", escapes.message)
      const missing = yield* failure(loadIn(root, "missing.json"))
      assert.strictEqual(missing._tag, "ScriptNotFound")
      assert.include(missing.message, Path.join(root, "parts", "nowhere.json"))
      assert.include(missing.message, Path.join(root, "nowhere.json"))
    }).pipe(Effect.provide(platform))
  )

  it.live("rejects external files that include each other", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* writeFiles(dir, {
        "a.json": { recorded_script: { type: "external", file: "b.json" } },
        "b.json": { other: { type: "external", file: "a.json" } }
      })
      const error = yield* failure(loadIn(dir, "a.json"))
      assert.strictEqual(error._tag, "ScriptCycle")
      assert.include(error.message, "a.json -> b.json -> a.json")
    }).pipe(Effect.provide(platform))
  )

  it.live("reports unknown names, types, actions, modules and nested compound_multi", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* writeFiles(dir, {
        "name.json": { recorded_script: { type: "named", name: "nowhere" } },
        "type.json": { recorded_script: { type: "compound", scripts: [{ type: "telnet" }] } },
        "action.json": { recorded_script: { type: "command", action: "dance", args: [] } },
        "module.json": { recorded_script: { type: "command", action: "import", args: ["os"] } },
        "path.json": { recorded_script: { type: "command", action: "import", args: ["./evil.ts"] } },
        "notimported.json": { recorded_script: { type: "command", action: "counter.hello", args: ["x"] } },
        "badargs.json": {
          recorded_script: {
            type: "compound",
            scripts: [
              { type: "command", action: "import", args: ["counter"] },
              { type: "command", action: "counter.hello", args: [1, 2] }
            ]
          }
        },
        "sleep.json": { recorded_script: { type: "command", action: "sleep", args: ["soon"] } },
        "multi.json": { recorded_script: { type: "compound", scripts: [{ type: "compound_multi", scripts: [] }] } }
      })
      const load = (file: string) => failure(loadIn(dir, file, {}, [counter]))
      assert.strictEqual((yield* load("name.json"))._tag, "ScriptNameNotFound")
      assert.include((yield* load("type.json")).message, 'unknown script type "telnet"')
      assert.include((yield* load("action.json")).message, "unknown action")
      assert.include((yield* load("module.json")).message, 'module "os" is not registered')
      assert.include((yield* load("path.json")).message, "--allow-module-path")
      assert.include((yield* load("notimported.json")).message, 'module "counter" is not imported')
      assert.strictEqual((yield* load("badargs.json"))._tag, "ActionInvalid")
      assert.include((yield* load("sleep.json")).message, "sleep takes one number")
      assert.include((yield* load("multi.json")).message, "compound_multi can only be")
    }).pipe(Effect.provide(platform))
  )

  it.live("loads an action module from a path only with allowModulePaths", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* writeFiles(dir, {
        "mod.mjs": `export default { name: "ext", actions: ["go"], prepare: () => ({ _tag: "Success", success: { module: "ext", run: () => undefined } }) }`,
        "s.json": { recorded_script: { type: "command", action: "import", args: ["./mod.mjs"] } }
      })
      assert.strictEqual((yield* failure(loadIn(dir, "s.json")))._tag, "ActionInvalid")
      const loaded = yield* loadIn(dir, "s.json", { allowModulePaths: true })
      assert.deepStrictEqual(loaded.modules, ["ext"])
    }).pipe(Effect.provide(platform))
  )

  it.live("a compound_multi entry becomes one step list per connection; missing responses are reported", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* writeFiles(dir, {
        "m.json": {
          recorded_script: { type: "named", name: "both" },
          both: {
            type: "compound_multi",
            scripts: [step("1", "a"), { type: "compound", scripts: [step("2", "b"), step("3", "c")] }]
          }
        },
        "bad.json": { recorded_script: { type: "compound", scripts: [{ type: "script", command: "x" }] } }
      })
      const loaded = yield* loadIn(dir, "m.json")
      assert.strictEqual(loaded.plan._tag, "Multi")
      assert.deepStrictEqual(loaded.plan._tag === "Multi" ? loaded.plan.connections.map((c) => c.length) : [], [1, 2])
      const error = yield* failure(loadIn(dir, "bad.json"))
      assert.include(error.message, "recorded_script.scripts[0]: missing response field")
    }).pipe(Effect.provide(platform))
  )
})
