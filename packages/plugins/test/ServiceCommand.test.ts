import { assert, describe, it } from "@effect/vitest"
import { Template } from "@testbed/commands"
import { Effect } from "effect"
import { ServiceCommand } from "../src/index.ts"

describe("ServiceCommand", () => {
  it.effect("renders program, arguments, environment and stdin from variables, without a shell", () =>
    Effect.gen(function* () {
      const command = yield* ServiceCommand.renderCommand(
        {
          program: "{{ tool }}",
          args: ["-p", "{{ port }}", "--name={{ name | shquote }}", "{{ extra }}", "a b {{ port }}"],
          env: { KEYLOG: "{{ dir }}/keys.log" },
          stdin: "GET {{ path }}"
        },
        { tool: "openssl", port: 4433, name: "it's", extra: ["-a", "{{ port }}"], dir: "/tmp/x", path: "/" },
        { id: "t/s", cwd: "/tmp/x" }
      )
      assert.deepStrictEqual(command, {
        program: "openssl",
        // Each template is one argument, spaces and all; a whole-argument list expands to one per item.
        args: ["-p", "4433", `--name=${Template.shquote("it's")}`, "-a", "4433", "a b 4433"],
        env: { KEYLOG: "/tmp/x/keys.log" },
        stdin: "GET /",
        id: "t/s",
        cwd: "/tmp/x"
      })
    })
  )

  it.effect("an unknown variable is an error naming it, never an empty argument — also inside {% if %}", () =>
    Effect.gen(function* () {
      const plain = yield* Effect.flip(
        ServiceCommand.renderCommand({ program: "x", args: ["{{ prot }}"] }, { port: 1 })
      )
      assert.instanceOf(plain, ServiceCommand.TemplateFailed)
      assert.include(plain.reason, `unknown variable "prot"`)
      const guarded = yield* Effect.flip(ServiceCommand.renderText("{% if verbose %}-v{% endif %}", { port: 1 }))
      assert.include(guarded.reason, `unknown variable "verbose"`)
      const syntax = yield* Effect.flip(ServiceCommand.renderText("{{ port ", { port: 1 }))
      assert.instanceOf(syntax, ServiceCommand.TemplateFailed)
    })
  )

  it.effect("is nunjucks: conditions, defaults and filters work; dotted names address other services' values", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* ServiceCommand.renderText("{{ server.host }}:{{ server.port }}", {
          "server.host": "127.0.0.1",
          "server.port": 9
        }),
        "127.0.0.1:9"
      )
      assert.strictEqual(
        yield* ServiceCommand.renderText("{% if debug %}-d {% endif %}{{ level | default(3) }} {{ name | upper }}", {
          debug: true,
          name: "x"
        }),
        "-d 3 X"
      )
    })
  )

  it("checks parameters: unknown names, wrong types, missing required ones, all at once", () => {
    const problems = ServiceCommand.checkParameters(
      {
        count: { type: "int", default: 3 },
        port: { type: "port" },
        program: { type: "string", required: true },
        args: { type: "list", default: [] }
      },
      { count: "five", port: 70000, colour: "blue", args: ["a", 1] }
    )
    assert.deepStrictEqual(
      problems.map(([name]) => name),
      ["count", "port", "colour", "args", "program"]
    )
    assert.deepStrictEqual(ServiceCommand.checkParameters({ count: { type: "int" } }, { count: 2 }), [])
  })

  it("resolves defaults under the given values", () => {
    assert.deepStrictEqual(
      ServiceCommand.resolveParameters(
        { a: { type: "int", default: 1 }, b: { type: "string", default: "x" }, c: { type: "string" } },
        { b: "y" }
      ),
      { a: 1, b: "y" }
    )
  })
})
