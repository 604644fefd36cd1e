import { readdirSync, readFileSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Ajv } from "ajv"
import { Effect, Exit } from "effect"
import * as Yaml from "yaml"
import { ExperimentConfig, FileSchemas } from "../src/index.ts"

const root = decodeURIComponent(new URL("../../../", import.meta.url).pathname)
const schemas = join(root, "packages/experiments/schemas")

const yamlFiles = (dir: string): ReadonlyArray<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? yamlFiles(join(dir, entry.name)) : /\.ya?ml$/.test(entry.name) ? [join(dir, entry.name)] : []
  )

const experiments = yamlFiles(join(root, "fixtures/experiments"))
const stages = readdirSync(join(root, "fixtures/stages"))
  .map((name) => join(root, "fixtures/stages", name, "stage.yaml"))
  .filter((file) => yamlFiles(join(file, "..")).includes(file))

const validatorFor = (kind: FileSchemas.Kind) => {
  const ajv = new Ajv({ allErrors: true, strict: false })
  return ajv.compile(JSON.parse(readFileSync(join(schemas, `${kind}.schema.json`), "utf8")))
}

/** The schema a file's `# yaml-language-server: $schema=…` modeline names, resolved from the file. */
const modeline = (file: string): string | undefined => {
  const match = /^# yaml-language-server: \$schema=(\S+)$/m.exec(readFileSync(file, "utf8").split("\n")[0] ?? "")
  return match?.[1] === undefined ? undefined : resolve(file, "..", match[1])
}

describe("FileSchemas (testbed schema)", () => {
  it("the committed schemas are the generated ones (regenerate: testbed schema KIND > packages/experiments/schemas/KIND.schema.json)", () => {
    for (const kind of FileSchemas.kinds) {
      // Compared as JSON: the committed files are formatted by biome.
      assert.deepStrictEqual(
        JSON.parse(readFileSync(join(schemas, `${kind}.schema.json`), "utf8")),
        FileSchemas.jsonSchema(kind),
        kind
      )
    }
  })

  it("every fixture names its schema in a yaml-language-server modeline", () => {
    for (const file of experiments) assert.strictEqual(modeline(file), join(schemas, "experiment.schema.json"), file)
    for (const file of stages) assert.strictEqual(modeline(file), join(schemas, "stage.schema.json"), file)
    assert.isAbove(experiments.length, 10)
    assert.isAbove(stages.length, 2)
  })

  it.effect("every experiment the decoder takes validates against the JSON Schema, and a broken one does not", () =>
    Effect.gen(function* () {
      const validate = validatorFor("experiment")
      let decoded = 0
      for (const file of experiments) {
        const text = readFileSync(file, "utf8")
        const exit = yield* Effect.exit(ExperimentConfig.parse(text, file))
        const valid = validate(Yaml.parse(text))
        if (Exit.isSuccess(exit)) {
          decoded++
          assert.isTrue(valid, `${relative(root, file)}: ${JSON.stringify(validate.errors, null, 2)}`)
        }
      }
      assert.isAbove(decoded, 10)
      const invalid = join(root, "fixtures/experiments/cases/invalid.yaml")
      assert.isFalse(validate(Yaml.parse(readFileSync(invalid, "utf8"))))
      const paths = (validate.errors ?? []).map((error) => error.instancePath)
      assert.include(paths, "/tests/1/services/only/role")
      assert.isFalse(validate({ tests: [{ name: "t", timout: 3 }] }), "a misspelt key is flagged")
    })
  )

  it("every stage fixture validates against the stage JSON Schema", () => {
    const validate = validatorFor("stage")
    for (const file of stages) {
      assert.isTrue(validate(Yaml.parse(readFileSync(file, "utf8"))), `${file}: ${JSON.stringify(validate.errors)}`)
    }
    assert.isFalse(validate({ name: "s", nodes: {}, nodez: {} }))
  })

  it("the plugin schema takes a plugin definition and flags a wrong one", () => {
    const validate = validatorFor("plugin")
    const plugin = { name: "echo", type: "iut", protocols: ["tcp"], versions: ["1"], roles: {} }
    assert.isTrue(validate(plugin), JSON.stringify(validate.errors))
    assert.isFalse(validate({ ...plugin, type: "server" }))
  })
})
