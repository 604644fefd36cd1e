import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { CommandRunner, Template } from "../src/index.ts"
import { LocalLayer } from "./fixtures/processes.ts"

const hostile = "'; rm -rf /'"

const Server = Schema.Struct({
  port: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 })),
  name: Schema.String,
  verbose: Schema.optionalKey(Schema.Boolean)
})

describe("Template", () => {
  it.effect("renders with parameters checked by a Schema first", () =>
    Effect.gen(function* () {
      const template = yield* Template.make("serve --port {{ port }} --name {{ name }}", {
        name: "server.start",
        parameters: Server
      })
      assert.strictEqual(
        yield* Template.render(template, { port: 8443, name: "quic" }),
        "serve --port 8443 --name quic"
      )
      const invalid = yield* Effect.flip(Template.render(template, { port: 70000, name: "quic" }))
      assert.strictEqual(invalid._tag, "TemplateInvalid")
      assert.strictEqual(invalid.variable, "port")
      assert.strictEqual(invalid.template, "server.start")
    })
  )

  it.effect("an undefined variable is an error naming it, never an empty string", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [string, object, string]> = [
        ["hello {{ who }}", {}, "who"],
        ["{% if debug %}-d{% endif %}", {}, "debug"],
        ["{{ name | upper }}", {}, "name"],
        ["{{ user.name }}", { user: {} }, "user.name"],
        ["{% for h in hosts %}{{ h }}{% endfor %}", {}, "hosts"]
      ]
      for (const [source, parameters, variable] of cases) {
        const template = yield* Template.make(source)
        const error = yield* Effect.flip(Template.render(template, parameters))
        assert.strictEqual(error._tag, "TemplateRenderFailed", source)
        assert.strictEqual(error.variable, variable, source)
      }
      // Asking about undefined on purpose is allowed, and so are names the template binds itself.
      const lenient = yield* Template.make(
        "{% if debug is defined %}-d{% endif %}{{ level | default('info') }}{% set x = 1 %}{{ x }}{% for h in hs %}{{ loop.index }}{{ h.n }}{% endfor %}"
      )
      assert.strictEqual(yield* Template.render(lenient, { hs: [{ n: "a" }] }), "info11a")
    })
  )

  it.effect("a syntax error is TemplateInvalid when the template is made", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Template.make("{{ port + }}", { name: "broken" }))
      assert.strictEqual(error._tag, "TemplateInvalid")
      assert.include(error.reason, "unexpected token")
    })
  )

  it.effect("shquote quotes anything as one shell word", () =>
    Effect.sync(() => {
      assert.strictEqual(Template.shquote("plain"), "plain")
      assert.strictEqual(Template.shquote("it's"), "'it'\\''s'")
      assert.strictEqual(Template.shquote(""), "''")
    })
  )

  it.live("a hostile value survives shquote and sh verbatim", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const template = yield* Template.make("printf '%s|' {{ value | shquote }} {{ other | shquote }}")
      for (const value of [hostile, "$(touch /tmp/pwned)", "a\nb", "`id`", '"; echo "', "back\\slash"]) {
        const command = yield* Template.toCommand(template, { value, other: "x y" }, { shell: true })
        const result = yield* runner.run(command)
        assert.strictEqual(result.stdout, `${value}|x y|`)
      }
    }).pipe(Effect.provide(LocalLayer))
  )

  it.live("program mode: each word renders to exactly one argument, no shell involved", () =>
    Effect.gen(function* () {
      const runner = yield* CommandRunner.CommandRunner
      const template = yield* Template.make(
        "printf '%s|' {{ value }} 'two words' {% if verbose %}-v{% endif %} --name={{ name }} \"\"",
        { parameters: Schema.Struct({ value: Schema.String, name: Schema.String, verbose: Schema.Boolean }) }
      )
      const command = yield* Template.toCommand(template, { value: hostile, name: "a b", verbose: false })
      assert.strictEqual(command.program, "printf")
      assert.deepStrictEqual(command.args, ["%s|", hostile, "two words", "--name=a b", ""])
      const result = yield* runner.run(command)
      assert.strictEqual(result.stdout, `${hostile}|two words|--name=a b||`)
      const verbose = yield* Template.toCommand(template, { value: "v", name: "n", verbose: true })
      assert.include(verbose.args ?? [], "-v")
    }).pipe(Effect.provide(LocalLayer))
  )

  it.effect("program mode refuses a block that spans words", () =>
    Effect.gen(function* () {
      const template = yield* Template.make("cmd {% if v %} -v {% endif %}")
      const error = yield* Effect.flip(Template.toCommand(template, { v: true }))
      assert.strictEqual(error._tag, "TemplateInvalid")
      assert.include(error.reason, "one word")
    })
  )
})
