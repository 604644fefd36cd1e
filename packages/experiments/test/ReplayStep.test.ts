// The replay step's logic — the server's address handed to the client, the client's exit and the replay's verdict
// judged together, divergence, a stalled client, a client that never connects — on @testbed/replay's scripted server
// (`ReplayServer.layerTest`) and the fake environment, on TestClock: nothing listens, no client runs.
// Replay.test.ts runs the same steps with the real server and client (integration).
import { assert, describe, it } from "@effect/vitest"
import { NodeServices } from "@effect/platform-node"
import type { EnvironmentPlugin, FakeEnvironment } from "@testbed/plugins"
import { ReplayServer, type ScriptedServer } from "@testbed/replay"
import { Effect, FileSystem } from "effect"
import { type Ran, runOnFake } from "./fake.ts"

const greeting = decodeURIComponent(new URL("../../../fixtures/replay/greeting-1.json", import.meta.url).pathname)

/** One test with one replay step of the greeter recording; its client is `greeter-client HOST PORT`. */
const experiment = (extra: ReadonlyArray<string> = []) =>
  [
    "name: replay-steps",
    "tests:",
    "  - name: greeter",
    "    steps:",
    "      - replay:",
    "          name: greeting",
    `          script: ${JSON.stringify(greeting)}`,
    '          command: ["greeter-client", "{{ replay_host }}", "{{ replay_port }}"]',
    "          step_timeout: 3 seconds",
    "          timeout: 30 seconds",
    ...extra.map((line) => `          ${line}`),
    "    assertions:",
    "      - { type: replay_passed, step: greeting }",
    ""
  ].join("\n")

interface Played {
  readonly ran: Ran
  readonly launches: ReadonlyArray<EnvironmentPlugin.ServiceLaunch>
  readonly served: ReadonlyArray<{ readonly connections: number | undefined; readonly stepTimeout: unknown }>
}

/** Runs the experiment with the client process and the replay's clients scripted. */
const play = (
  client: FakeEnvironment.ProcessScript,
  clients: ReadonlyArray<ScriptedServer.ClientScript>,
  extra?: ReadonlyArray<string>
) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-replay-step-" })
    yield* fs.writeFileString(`${dir}/replay.yaml`, experiment(extra))
    const launches: Array<EnvironmentPlugin.ServiceLaunch> = []
    const served: Array<Played["served"][number]> = []
    const ran = yield* runOnFake(
      `${dir}/replay.yaml`,
      (launch) => {
        launches.push(launch)
        return client
      },
      {
        layer: ReplayServer.ReplayServer.layerTest((_plan, options) => {
          served.push({ connections: options.connections, stepTimeout: options.stepTimeout })
          return clients
        })
      }
    )
    return { ran, launches, served } satisfies Played
  }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))

const checked = (ran: Ran) =>
  ran.events.flatMap((e) =>
    e.type === "assertion.checked" && e.data.kind === "replay_passed" ? [[e.data.passed, e.data.message]] : []
  )

describe("the replay step on the scripted replay server (TestClock)", () => {
  it.effect("the client gets the server's address; a client that follows the script passes", () =>
    Effect.gen(function* () {
      const { ran, launches, served } = yield* play({ exitAfter: "1 second" }, [{ duration: "500 millis" }])
      const [test] = ran.result.tests
      assert.strictEqual(test?.status, "passed", test?.reason)
      // The greeter recording has 6 exchanges, each counted by the server as matched.
      assert.deepStrictEqual(checked(ran), [
        [true, "step greeting: replay passed (1 connection(s), 6 step(s) matched)"]
      ])
      assert.deepStrictEqual(served, [{ connections: 1, stepTimeout: served[0]?.stepTimeout }])
      assert.isDefined(served[0]?.stepTimeout)
      const [launch] = launches
      assert.deepStrictEqual(
        [launch?.command.program, ...(launch?.command.args ?? [])],
        ["greeter-client", "127.0.0.1", "41000"]
      )
      assert.strictEqual(launch?.command.env?.NDS_TEST_PORT, "41000")
    })
  )

  it.effect("a client that diverges fails the step at the first differing byte, whatever its exit code", () =>
    Effect.gen(function* () {
      const { ran } = yield* play(
        { exitAfter: "1 second", exitCode: 3 },
        [{ duration: "200 millis", diverges: { step: 1, sends: "NAME intruder\n" } }],
        ["expect_exit: any"]
      )
      const [test] = ran.result.tests
      assert.strictEqual(test?.status, "failed")
      assert.match(
        test?.reason ?? "",
        /^step greeting: replay failed: connection 0, step recorded_script\.scripts\[1\]/
      )
      assert.include(test?.reason, "the client's bytes differ from the script at offset 5")
    })
  )

  it.effect("a client that stalls fails the replay once the step timeout has passed on the clock", () =>
    Effect.gen(function* () {
      const { ran } = yield* play({ exitAfter: "5 seconds", exitCode: 0 }, [{ stallsAt: 2 }])
      const [test] = ran.result.tests
      assert.strictEqual(test?.status, "failed")
      assert.include(
        test?.reason,
        "step recorded_script.scripts[2]: the client's input did not arrive within the step's 3000 ms"
      )
      const finished = ran.events.find((e) => e.type === "step.finished" && e.data.kind === "replay")
      assert.isAtLeast(finished?.type === "step.finished" ? finished.data.durationMs : 0, 5000)
    })
  )

  it.effect("a client that exits without connecting leaves the script unplayed", () =>
    Effect.gen(function* () {
      const { ran } = yield* play({ exitAfter: "100 millis" }, [])
      const [test] = ran.result.tests
      assert.strictEqual(test?.status, "failed")
      assert.include(test?.reason, "the client never opened this connection with 6 step(s) of the script left")
    })
  )
})
