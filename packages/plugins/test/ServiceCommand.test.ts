import { assert, describe, it } from "@effect/vitest"
import { ServiceCommand } from "../src/index.ts"

describe("ServiceCommand", () => {
  it("renders program, arguments, environment and stdin from variables, without a shell", () => {
    const command = ServiceCommand.renderCommand(
      {
        program: "{{ tool }}",
        args: ["-p", "{{ port }}", "--name={{ name | shquote }}", "{{ extra }}"],
        env: { KEYLOG: "{{ dir }}/keys.log" },
        stdin: "GET {{ path }}"
      },
      { tool: "openssl", port: 4433, name: "it's", extra: ["-a", "{{ port }}"], dir: "/tmp/x", path: "/" },
      { id: "t/s", cwd: "/tmp/x" }
    )
    assert.deepStrictEqual(command, {
      program: "openssl",
      args: ["-p", "4433", "--name='it'\\''s'", "-a", "4433"],
      env: { KEYLOG: "/tmp/x/keys.log" },
      stdin: "GET /",
      id: "t/s",
      cwd: "/tmp/x"
    })
  })

  it("an unknown variable is an error naming it, never an empty argument", () => {
    const result = ServiceCommand.renderCommand({ program: "x", args: ["{{ prot }}"] }, { port: 1 })
    assert.instanceOf(result, ServiceCommand.TemplateFailed)
    assert.include((result as ServiceCommand.TemplateFailed).reason, `unknown variable "prot"`)
  })

  it("dotted names address other services' values", () => {
    assert.strictEqual(
      ServiceCommand.renderText("{{ server.host }}:{{ server.port }}", {
        "server.host": "127.0.0.1",
        "server.port": 9
      }),
      "127.0.0.1:9"
    )
  })

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
