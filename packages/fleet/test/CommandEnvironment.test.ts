// Commands never see testbed's secrets: `printenv` of every secret variable, run by a real agent process that was
// given them in its environment, prints nothing; an allowlist narrows what else passes.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { CommandEnvironment } from "../src/index.ts"
import { type BrokerKind, credentials, startBroker } from "./brokers.ts"
import { agentProcess, layer, outputOf, runMosquittoTests } from "./helpers.ts"
import { secret, startOperator } from "./scenarios.ts"

const secretValue = Redacted.value(secret)

describe("CommandEnvironment.forCommands", () => {
  it("drops the secret variables, any variable holding a secret, and what the allowlist leaves out", () => {
    const base = {
      PATH: "/usr/bin:/bin",
      TESTBED_FLEET_SECRET: "s3cret-value",
      MQTT_PASSWORD: "pw",
      COPY: "x s3cret-value y",
      SHORT: "pw",
      LC_ALL: "C",
      LC_TIME: "C",
      OTHER: "1"
    }
    const secrets = [Redacted.make("s3cret-value"), Redacted.make("pw")]
    assert.deepStrictEqual(CommandEnvironment.forCommands(base, { secrets }), {
      PATH: "/usr/bin:/bin",
      LC_ALL: "C",
      LC_TIME: "C",
      OTHER: "1"
    })
    // A short secret only counts as an exact copy: it must not strip every value that happens to contain it.
    assert.deepStrictEqual(CommandEnvironment.forCommands({ P: "pwd", Q: "pw" }, { secrets }), { P: "pwd" })
    assert.deepStrictEqual(
      CommandEnvironment.forCommands(base, { secrets, pass: ["PATH", "LC_*", "TESTBED_FLEET_SECRET", "COPY"] }),
      { PATH: "/usr/bin:/bin", LC_ALL: "C", LC_TIME: "C" }
    )
  })
})

const kinds: ReadonlyArray<BrokerKind> = runMosquittoTests
  ? ["embedded with a password", "mosquitto with a password"]
  : ["embedded with a password"]

describe.each(kinds)("an agent process on %s", (kind) => {
  it.live(
    "runs commands without the signing secret, the broker password or any copy of them",
    () =>
      Effect.gen(function* () {
        const broker = yield* startBroker(kind)
        const env = {
          TESTBED_FLEET_SECRET: secretValue,
          MQTT_PASSWORD: credentials.password,
          SECRET_COPY: `before ${secretValue} after`,
          PASSWORD_COPY: credentials.password,
          VISIBLE: "yes",
          LC_FLEET_TEST: "kept",
          OTHER: "dropped by the allowlist"
        }
        const common = ["--broker", broker.url, "--username", credentials.username]
        const open = yield* agentProcess([...common, "--id", "env-open"], env)
        const narrow = yield* agentProcess(
          [...common, "--id", "env-narrow", "--pass-env", "VISIBLE", "--pass-env", "LC_*", "--pass-env", "MQTT_*"],
          env
        )
        const logs = [outputOf(open), outputOf(narrow)]
        const operator = yield* startOperator(broker, { expectAgents: 2, onFailure: "continue" })
        const registered = yield* operator.awaitRegistrations
        assert.deepStrictEqual([...registered].sort(), ["env-narrow", "env-open"], logs.map((l) => l.text()).join("\n"))
        const secretVariables = ["TESTBED_FLEET_SECRET", "MQTT_PASSWORD", "SECRET_COPY", "PASSWORD_COPY"]
        const summary = yield* operator.runPipelines([
          { name: "p", steps: [...secretVariables.map((name) => `printenv ${name}`), "env", "printenv VISIBLE"] }
        ])
        const on = (agent: string, index: number) => summary.steps.find((s) => s.agent === agent && s.index === index)!
        for (const agent of ["env-open", "env-narrow"]) {
          for (let index = 0; index < secretVariables.length; index++) {
            const step = on(agent, index)
            assert.strictEqual(step.state, "failed", `${agent}: printenv ${secretVariables[index]}`)
            assert.strictEqual(step.response?.output, "", `${agent}: printenv ${secretVariables[index]}`)
          }
          const all = on(agent, secretVariables.length).response!.output!
          assert.include(all, "VISIBLE=yes")
          assert.include(all, "LC_FLEET_TEST=kept")
          assert.notInclude(all, secretValue)
          assert.notInclude(all, credentials.password)
          assert.strictEqual(on(agent, secretVariables.length + 1).response?.output, "yes\n")
        }
        assert.include(on("env-open", secretVariables.length).response!.output!, "OTHER=")
        assert.notInclude(on("env-narrow", secretVariables.length).response!.output!, "OTHER=")
      }).pipe(Effect.provide(layer)),
    60_000
  )
})
