import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect } from "effect"
import { Config, Security, Setup } from "../src/index.ts"

const fixtures = `${import.meta.dirname}/../../../fixtures/fleet`

describe("Config", () => {
  it("splits pipelines on ; but not inside quotes or after a backslash", () => {
    assert.deepStrictEqual(Config.splitPipeline("a; b ;c"), ["a", "b", "c"])
    assert.deepStrictEqual(Config.splitPipeline(`sh -c 'x; y'; echo "p;q"; echo a\\;b`), [
      "sh -c 'x; y'",
      'echo "p;q"',
      "echo a\\;b"
    ])
    assert.deepStrictEqual(Config.splitPipeline(" ; ;"), [])
  })

  it.effect("reads the original config.ini as is", () =>
    Effect.gen(function* () {
      const config = yield* Config.load(`${fixtures}/config.ini`)
      assert.strictEqual(config.broker.broker, "localhost")
      assert.strictEqual(config.broker.port, 1883)
      assert.strictEqual(config.topics.commandLoader, "system_performance/command_loader")
      assert.strictEqual(Duration.toSeconds(config.operator.registrationTimeout), 5)
      assert.deepStrictEqual(
        config.operator.pipelines.map((p) => p.name),
        ["pipeline1", "pipeline2", "pipeline3"]
      )
      assert.deepStrictEqual(config.operator.pipelines[1]!.steps, [
        "sudo cpufreq-set -r -f 1200000",
        "stress-ng --cpu 0 --timeout 60s --metrics-brief"
      ])
      assert.isTrue(config.operator.jsonify)
      assert.strictEqual(config.operator.feedbackFile, "feedback.txt")
      assert.strictEqual(Config.brokerUrl(config), "mqtt://localhost:1883")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("keeps pipelineN in file order, not name order", () =>
    Effect.gen(function* () {
      const config = yield* Config.parse("c.ini", "[operator]\npipeline10 = b\npipeline2 = a\njsonify = False\n")
      assert.deepStrictEqual(
        config.operator.pipelines.map((p) => p.name),
        ["pipeline10", "pipeline2"]
      )
      assert.isFalse(config.operator.jsonify)
    })
  )

  it.effect("reads the YAML form with testbed's keys", () =>
    Effect.gen(function* () {
      const config = yield* Config.load(`${fixtures}/fleet.yaml`)
      assert.deepStrictEqual(config.operator.pipelines, [
        { name: "warmup", steps: ["uname -a", "nproc"] },
        { name: "pipeline2", steps: ["echo 'a; b'", "sleep 1"] }
      ])
      assert.strictEqual(config.operator.expectAgents, 3)
      assert.strictEqual(config.operator.onFailure, "continue")
      assert.strictEqual(Duration.toSeconds(config.operator.stepTimeout), 120)
      assert.strictEqual(Duration.toSeconds(config.agent.commandTimeout), 90)
      assert.deepStrictEqual(config.agent.allow, ["uname -a", "nproc", "echo *", "/sleep [0-9]+/"])
      assert.strictEqual(Duration.toSeconds(config.operator.lostGrace), 30)
      assert.strictEqual(config.agent.maxCommandBytes, 65536)
      assert.deepStrictEqual(config.agent.passEnv, ["PATH", "HOME", "LC_*"])
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("applies MQTT_BROKER and CLIENT_ID, and rejects bad values with the key", () =>
    Effect.gen(function* () {
      const config = Config.withEnv(yield* Config.defaults, { MQTT_BROKER: "10.0.0.5", CLIENT_ID: "sut-9" })
      assert.strictEqual(Config.brokerUrl(config), "mqtt://10.0.0.5:1883")
      assert.strictEqual(config.agent.id, "sut-9")
      const error = yield* Effect.flip(Config.parse("bad.ini", "[operator]\njsonify = maybe\n"))
      assert.include(error.message, "[operator] jsonify")
      const syntax = yield* Effect.flip(Config.parse("bad.ini", "key = value\n"))
      assert.include(syntax.message, "line 1")
    })
  )

  it.effect("durations take every TimeSpan form in both files; a bad one names section, key and value", () =>
    Effect.gen(function* () {
      const ini = yield* Config.parse(
        "c.ini",
        "[operator]\nregistration_timeout = 90\nstep_timeout = 1m30s\nlost_grace = 2 minutes\n[agent]\ncommand_timeout = 500ms\n"
      )
      assert.deepStrictEqual(
        [
          ini.operator.registrationTimeout,
          ini.operator.stepTimeout,
          ini.operator.lostGrace,
          ini.agent.commandTimeout
        ].map(Duration.toMillis),
        [90_000, 90_000, 120_000, 500]
      )
      const yaml = yield* Config.parse("c.yaml", "operator:\n  lost_grace: 1.5\nsecurity:\n  max_skew: 45s\n")
      assert.strictEqual(Duration.toMillis(yaml.operator.lostGrace), 1500)
      assert.strictEqual(Duration.toMillis(yaml.security.maxSkew), 45_000)
      const error = yield* Effect.flip(Config.parse("bad.ini", "[operator]\nlost_grace = soon\n"))
      assert.strictEqual(
        error.message,
        `bad.ini: [operator] lost_grace: not a duration: "soon" (use seconds, or e.g. "2s", "500ms", "1m30s", "2 minutes")`
      )
    })
  )

  it.effect("interpolates config.ini values as Python's configparser does (%% and %(key)s)", () =>
    Effect.gen(function* () {
      // Expected values printed by Python 3.11's configparser from the same file.
      const config = yield* Config.load(`${fixtures}/interpolation.ini`)
      assert.deepStrictEqual(config.operator.pipelines, [
        { name: "pipeline1", steps: ["printf 'pct=%d\\n' 5", "ls /opt/bench/bin"] },
        { name: "pipeline2", steps: ["echo 5%", "printf '%s\\n' '%(rate)s'"] }
      ])
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("refuses bad interpolation with configparser's errors, naming section and key", () =>
    Effect.gen(function* () {
      const bad = (value: string) =>
        Effect.flip(Config.parse("bad.ini", `[operator]\nrate = 5\na = %(b)s\nb = %(a)s\npipeline1 = ${value}\n`))
      const messages = yield* Effect.forEach(
        ["echo 50%", "echo 50%x", "echo %(unclosed", "echo %(nope)s", "echo %(a)s"],
        (value) => Effect.map(bad(value), (e) => e.message)
      )
      // Python 3.11: str() of InterpolationSyntaxError, InterpolationMissingOptionError, InterpolationDepthError.
      assert.deepStrictEqual(messages, [
        "bad.ini: [operator] pipeline1: '%' must be followed by '%' or '(', found: '%'",
        "bad.ini: [operator] pipeline1: '%' must be followed by '%' or '(', found: '%x'",
        "bad.ini: [operator] pipeline1: bad interpolation variable reference '%(unclosed'",
        "bad.ini: [operator] pipeline1: Bad value substitution: option 'pipeline1' in section 'operator' contains an interpolation key 'nope' which is not a valid option name. Raw value: 'echo %(nope)s'",
        "bad.ini: [operator] pipeline1: Recursion limit exceeded in value substitution: option 'pipeline1' in section 'operator' contains an interpolation key which cannot be substituted in 10 steps. Raw value: 'echo %(a)s'"
      ])
      // YAML has no interpolation: a % is a %.
      const yaml = yield* Config.parse("c.yaml", "operator:\n  pipelines: ['echo 100%%']\n")
      assert.deepStrictEqual(yaml.operator.pipelines[0]!.steps, ["echo 100%%"])
    })
  )

  it.effect("an environment that cannot be read is a typed error naming the variable, not a crash", () =>
    Effect.gen(function* () {
      const broken = ConfigProvider.make(() => Effect.fail(new ConfigProvider.SourceError({ message: "vault down" })))
      const error = yield* Effect.flip(
        Setup.resolve({ compat: true }, "agent").pipe(Effect.provideService(ConfigProvider.ConfigProvider, broken))
      )
      assert.strictEqual(error._tag, "ConfigInvalid")
      assert.include(error.message, "environment variable MQTT_BROKER")
      assert.include(error.message, "vault down")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("an agent's flags win over the config file's [agent] section; empty lists count as not given", () =>
    Effect.gen(function* () {
      const config = yield* Config.parse("agent.ini", "[agent]\nid = from-file\nallow = echo *\ncommand_timeout = 5s\n")
      const resolved = { config, connection: { url: "mqtt://127.0.0.1:1883" }, signing: Security.compat }
      const fromFile = Setup.agentOptions(resolved, { allow: [], passEnv: [] })
      assert.strictEqual(fromFile.id, "from-file")
      assert.deepStrictEqual(fromFile.ids, ["from-file"])
      assert.deepStrictEqual(fromFile.allow, config.agent.allow)
      assert.isUndefined(fromFile.passEnv)
      assert.isTrue(Duration.equals(Duration.fromInputUnsafe(fromFile.commandTimeout!), Duration.seconds(5)))
      const fromFlags = Setup.agentOptions(resolved, {
        id: "flag",
        allow: ["true"],
        passEnv: ["PATH"],
        commandTimeout: Duration.seconds(1)
      })
      assert.deepStrictEqual([fromFlags.id, fromFlags.allow, fromFlags.passEnv], ["flag", ["true"], ["PATH"]])
      assert.isTrue(Duration.equals(Duration.fromInputUnsafe(fromFlags.commandTimeout!), Duration.seconds(1)))
    })
  )
})
