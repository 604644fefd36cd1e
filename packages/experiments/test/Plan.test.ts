// What --dry-run refuses before anything runs: names that would leave the run directory or reach the terminal as
// escape sequences, ports out of range, zero timeouts, template variables the run would not give, and patterns
// RE2 cannot match in linear time — each with its YAML path.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { Experiment, ExperimentConfig } from "../src/index.ts"
import { inside } from "../src/internal/runPath.ts"
import { fixtures } from "./support.ts"

describe("Plan (the checks of --dry-run)", () => {
  it.effect("names, ports, timeouts, template variables and patterns are checked, with their YAML paths", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Experiment.prepare(`${fixtures}cases/escaping-names.yaml`))
      const problems = new Map(error.problems.map((problem) => [problem.path, problem.message]))
      const expect = (path: string, text: string) =>
        assert.include(problems.get(path) ?? `no problem at ${path}`, text, `at ${path}`)
      expect("tests[0].steps[0].run.name", `"../../ESCAPED" contains a path separator`)
      expect("tests[0].steps[1].fleet.name", `"../fleet" contains a path separator`)
      expect("tests[0].steps[2].replay.name", `"re/play" contains a path separator`)
      expect("tests[0].services.a/b", `"a/b" contains a path separator`)
      expect("tests[0].services...", `".." is not a name`)
      expect("tests[1].services.server.port", "between 1 and 65535")
      expect("test_timeout", "a timeout must be longer than zero, got 0")
      expect("tests[2].steps[1].run.timeout", "a timeout must be longer than zero")
      expect("tests[0].steps[0].run.command[1]", `unknown variable "nope"`)
      expect("tests[0].steps[2].replay.command[1]", `unknown variable "replay_hots"`)
      expect("tests[2].services.client.parameters.args[1]", `unknown variable "port"`)
      expect("tests[2].services.client.parameters.args[3]", `unknown variable "server.nope"`)
      expect("tests[2].steps[1].run.shell", `unknown variable "target_port"`)
      expect("tests[2].assertions[0].path", `unknown variable "missing"`)
      expect("tests[2].name", "contains control characters")
      expect("tests[0].assertions[0].pattern", "backreferences")
      expect("tests[0].assertions[1].pattern", "lookahead and lookbehind")
      expect("tests[0].assertions[2].pattern", "missing closing )")
      // What the run gives is not a problem: a client's target_port, a service step's parameters, server.port.
      assert.isUndefined(problems.get("tests[2].services.client.parameters.args[0]"))
      assert.isUndefined(problems.get("tests[2].services.client.parameters.args[2]"))
      assert.isUndefined(problems.get("tests[2].steps[0].run.shell"))
      // No raw escape byte in what would be printed.
      assert.notInclude(error.message, "\u001b")
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("readiness with a timeout alone changes only the plugin's deadline; its kind and pattern stay", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "testbed-readiness-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      const write = (name: string, lines: ReadonlyArray<string>) => {
        writeFileSync(join(dir, name), [...lines, ""].join("\n"))
        return join(dir, name)
      }
      const file = write("deadline.yaml", [
        "tests:",
        "  - name: echo",
        "    services:",
        "      server: { implementation: node-echo, role: server, readiness: { timeout: 2 minutes } }",
        "      client: { implementation: node-echo, role: client, target: server }",
        "matrices:",
        "  - name: m",
        "    servers: [{ implementation: node-echo, readiness: { timeout: 3 minutes } }]",
        "    clients: [node-echo]"
      ])
      const { plan } = yield* Experiment.prepare(file)
      const server = (test: number) => plan.tests[test]!.services.find((service) => service.role === "server")!
      for (const [test, minutes] of [
        [0, 2],
        [1, 3]
      ] as const) {
        const readiness = server(test).readiness
        assert.strictEqual(readiness.kind, "log")
        assert.isTrue(
          readiness.kind === "log" && Duration.equals(readiness.timeout, Duration.minutes(minutes)),
          `test ${test}`
        )
        assert.isTrue(readiness.kind === "log" && readiness.pattern.source === "echo server listening")
      }
      // A kind replaces the plugin's readiness, as before; a deadline for a service that waits for nothing is a problem.
      const replaced = write("replaced.yaml", [
        "tests:",
        "  - name: echo",
        "    services:",
        "      server: { implementation: node-echo, role: server, readiness: { kind: port, timeout: 1 minute } }"
      ])
      assert.strictEqual((yield* Experiment.prepare(replaced)).plan.tests[0]!.services[0]!.readiness.kind, "port")
      const nothing = write("nothing.yaml", [
        "tests:",
        "  - name: echo",
        "    services:",
        "      server: { implementation: node-echo, role: server }",
        "      client: { implementation: node-echo, role: client, target: server, readiness: { timeout: 1 minute } }"
      ])
      const error = yield* Effect.flip(Experiment.prepare(nothing))
      assert.include(
        error.problems.find((problem) => problem.path === "tests[0].services.client.readiness.timeout")?.message ?? "",
        "waits for no readiness"
      )
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("a billion-laughs file is one clear problem, not a stack trace or a full memory", () =>
    Effect.gen(function* () {
      const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
      for (const [from, to] of [..."abcdefgh"].slice(0, -1).map((c, i) => [c, "abcdefgh"[i + 1]!] as const))
        levels.push(`${to}: &${to} [${Array(9).fill(`*${from}`).join(", ")}]`)
      const error = yield* Effect.flip(ExperimentConfig.parse([...levels, "tests: [*h]"].join("\n"), "laughs.yaml"))
      assert.strictEqual(error._tag, "ExperimentConfigInvalid")
      assert.include(error.message, "aliases expand too far")
      // A few honest aliases are fine.
      const fine = yield* ExperimentConfig.parse(
        [
          "tests:",
          "  - { name: one, services: { server: &server { implementation: node-echo, role: server } } }",
          "  - { name: two, services: { server: *server } }"
        ].join("\n"),
        "aliases.yaml"
      )
      assert.strictEqual(fine.tests?.length, 2)
    })
  )

  it.effect("every file of a run is placed with one join that refuses to leave its directory", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* inside("/runs/r1", "tests", "t", "steps", "probe.stdout.log"),
        "/runs/r1/tests/t/steps/probe.stdout.log"
      )
      for (const segments of [["../../ESCAPED"], ["steps", "../../x"], ["/etc/passwd"], [""], ["a/../.."], ["x\0y"]]) {
        const refused = yield* Effect.flip(inside("/runs/r1", ...segments))
        assert.strictEqual(refused._tag, "PathOutsideRun", JSON.stringify(segments))
      }
    }).pipe(Effect.provide(NodeServices.layer))
  )
})
