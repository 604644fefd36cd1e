// The way a newcomer gets testbed, end to end, against a real npm registry (Verdaccio on loopback, storage in a
// temp dir): every package is published once (`pnpm -r publish`, so `prepack` builds dist/ and publishConfig
// applies), then, in temp directories with their own HOME and npm prefix and nothing of the checkout:
// `npm install -g @testbed/cli` and `testbed run quickstart.yaml`; a consumer project that installs
// @testbed/replay, @testbed/events and effect and runs their READMEs' examples; and a consumer on effect 4.0.6
// that must end up with one copy of effect.
import { spawnSync } from "node:child_process"
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { createServer } from "node:net"
import { homedir, tmpdir } from "node:os"
import { delimiter, dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Schedule } from "effect"
import { hiddenTypeProblems } from "../../../scripts/check-packages.ts"
import { extractFile } from "../../../scripts/readme-examples.ts"
import { isCI, missing, skipUnlessCI } from "./support/prerequisites.ts"
import * as Process from "./support/process.ts"
import * as Readmes from "./support/readmes.ts"

const repo = fileURLToPath(new URL("../../../", import.meta.url))
const node = process.execPath
const nodeDir = dirname(node)
const verdaccioBin = join(repo, "node_modules/verdaccio/bin/verdaccio")
const tscBin = join(repo, "node_modules/typescript/bin/tsc")
const cliManifest = JSON.parse(readFileSync(join(repo, "apps/testbed/package.json"), "utf8"))
const version: string = cliManifest.version
const engines: string = cliManifest.engines.node

/** npm's own entry script, run with the pinned Node (the system `npm` starts whatever `node` is first on PATH). */
const npmCli = (() => {
  const found = spawnSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).stdout.trim()
  return found === "" ? undefined : realpathSync(found)
})()

const prerequisites = missing({
  npm: npmCli !== undefined,
  "verdaccio (a devDependency: pnpm install)": existsSync(verdaccioBin)
})

// ---------------------------------------------------------------------------------------------------------------
// The registry, shared by every test of this file: started and filled once.

interface RegistryShape {
  readonly url: string
  /** A fresh directory standing for a user's machine: its own HOME (with an .npmrc naming the registry for
   * @testbed) and npm prefix, and the environment to run npm and testbed there. */
  readonly newHome: (label: string) => { readonly root: string; readonly env: NodeJS.ProcessEnv }
}

class Registry extends Context.Service<Registry, RegistryShape>()("test/Registry") {}

/** A loopback address and free port no earlier run used: npm's cache is keyed by URL, so a package cached from
 * an earlier run's registry can never stand in for the one published now. */
const freshAddress = Effect.callback<{ host: string; port: number }, Error>((resume) => {
  const host = `127.${1 + Math.floor(Math.random() * 254)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`
  const server = createServer()
  server.once("error", (error) => resume(Effect.fail(error)))
  server.listen(0, host, () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed({ host, port })))
  })
})

const baseEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^(npm_|pnpm_|PNPM_|INIT_CWD$|NODE_PATH$|NODE_OPTIONS$|VITEST|TEST$)/i.test(key) && key !== "NODE_ENV"
    )
  )

const waitUntilUp = (url: string) =>
  Effect.tryPromise(() => fetch(`${url}-/ping`).then((response) => response.ok)).pipe(
    Effect.flatMap((ok) => (ok ? Effect.void : Effect.fail(new Error("not yet")))),
    Effect.retry(Schedule.spaced("250 millis")),
    Effect.timeout("60 seconds")
  )

const startVerdaccio = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "testbed-registry-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const { host, port } = yield* freshAddress
  writeFileSync(
    join(dir, "config.yaml"),
    [
      `storage: ${join(dir, "storage")}`,
      "auth:",
      `  htpasswd: { file: ${join(dir, "htpasswd")}, max_users: 10 }`,
      "uplinks: {}",
      "packages:",
      '  "@testbed/*": { access: $all, publish: $authenticated }',
      "log: { type: stdout, format: json, level: warn }",
      ""
    ].join("\n")
  )
  const url = `http://${host}:${port}/`
  let log = ""
  yield* Effect.forkScoped(
    Process.run(node, [verdaccioBin, "--config", join(dir, "config.yaml"), "--listen", `${host}:${port}`], {
      cwd: dir,
      env: baseEnv(),
      timeoutMs: 30 * 60_000,
      onOutput: (chunk) => {
        if (log.length < 64 * 1024) log += chunk
      }
    })
  )
  yield* waitUntilUp(url).pipe(
    Effect.mapError(() => new Error(`Verdaccio did not answer on ${url} within 60 s:\n${log}`)),
    Effect.orDie
  )
  return { url, dir }
})

const addUser = (url: string) =>
  Effect.tryPromise(() =>
    fetch(`${url}-/user/org.couchdb.user:testbed`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "testbed", password: `local-only-${Math.random()}` })
    }).then((response) => response.json() as Promise<{ token?: string }>)
  ).pipe(
    Effect.flatMap(({ token }) =>
      token === undefined ? Effect.die(new Error("Verdaccio gave no token")) : Effect.succeed(token)
    ),
    Effect.orDie
  )

const expectSuccess = (what: string, finished: Process.Finished) =>
  finished.code === 0
    ? Effect.succeed(finished)
    : Effect.die(new Error(`${what} exited ${finished.code ?? finished.signal}\n${finished.output.slice(-20_000)}`))

/** Publishes every workspace package (pnpm -r: in dependency order, workspace:* replaced by the version). */
const publishAll = (url: string, token: string, dir: string) =>
  Effect.gen(function* () {
    const userconfig = join(dir, "publish.npmrc")
    const hostPath = url.replace(/^http:/, "")
    writeFileSync(userconfig, `${hostPath}:_authToken=${token}\n@testbed:registry=${url}\n`)
    // Under the lock packages/cluster/test/runnerImage.ts packs the workspace under: prepack empties and rebuilds
    // each dist/, and a pack at the same time would ship a half-built one.
    const finished = yield* Process.run(
      "flock",
      [
        join(tmpdir(), "testbed-workspace-pack.lock"),
        "npx",
        "--yes",
        "pnpm@10.34.9",
        "-r",
        "publish",
        "--registry",
        url,
        "--no-git-checks"
      ],
      {
        cwd: repo,
        env: { ...baseEnv(), NPM_CONFIG_USERCONFIG: userconfig },
        timeoutMs: 10 * 60_000
      }
    )
    yield* expectSuccess("pnpm -r publish", finished)
  })

const RegistryLive = Layer.effect(
  Registry,
  Effect.gen(function* () {
    const { url, dir } = yield* startVerdaccio
    yield* publishAll(url, yield* addUser(url), dir)
    const npmCache = process.env.npm_config_cache ?? join(homedir(), ".npm")
    const newHome = (label: string) => {
      const root = mkdtempSync(join(tmpdir(), `testbed-newcomer-${label}-`))
      for (const sub of ["home", "prefix", "work"]) mkdirSync(join(root, sub))
      writeFileSync(join(root, "home/.npmrc"), `@testbed:registry=${url}\n`)
      const env: NodeJS.ProcessEnv = {
        ...baseEnv(),
        HOME: join(root, "home"),
        PATH: [join(root, "prefix/bin"), nodeDir, "/usr/local/bin", "/usr/bin", "/bin"].join(delimiter),
        npm_config_prefix: join(root, "prefix"),
        // The user's download cache, for speed; the @testbed packages come from this run's registry only.
        npm_config_cache: npmCache,
        npm_config_prefer_offline: "true",
        npm_config_update_notifier: "false",
        npm_config_fund: "false",
        npm_config_audit: "false"
      }
      return { root, env }
    }
    return Registry.of({ url, newHome })
  }).pipe(Effect.orDie)
)

// ---------------------------------------------------------------------------------------------------------------

const npm = (args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv) =>
  Process.run(node, [npmCli ?? "npm", ...args], { cwd, env, timeoutMs: 10 * 60_000 }).pipe(
    Effect.flatMap((finished) => expectSuccess(`npm ${args.join(" ")}`, finished))
  )

/** The version of every copy of a package in the node_modules under a directory (nested ones included). */
const copiesOf = (dir: string, name: string): ReadonlyArray<string> =>
  (readdirSync(dir, { recursive: true, encoding: "utf8" }) as ReadonlyArray<string>)
    .filter((file) => file.endsWith(`node_modules/${name}/package.json`))
    .map((file) => JSON.parse(readFileSync(join(dir, file), "utf8")).version as string)

const removeAfter = (root: string) =>
  Effect.addFinalizer(() => Effect.sync(() => rmSync(root, { recursive: true, force: true })))

const consumerProject = (root: string) => {
  const dir = join(root, "work")
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
  return dir
}

const typecheck = (dir: string, skipLibCheck: boolean) =>
  Effect.gen(function* () {
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2023",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          skipLibCheck,
          types: ["node"]
        },
        include: ["*.ts"]
      })
    )
    const finished = yield* Process.run(node, [tscBin, "-p", "tsconfig.json"], { cwd: dir, timeoutMs: 5 * 60_000 })
    yield* expectSuccess("tsc in the consumer project", finished)
  })

const readmeExamples = (...packages: ReadonlyArray<string>) =>
  packages.flatMap((name) => extractFile(join(repo, "packages", name, "README.md")))

describe.skipIf(skipUnlessCI(prerequisites))("from a registry, as a newcomer", () => {
  it("has what it needs: npm and Verdaccio", () => {
    if (isCI) assert.deepStrictEqual(prerequisites, [])
  })

  layer(RegistryLive, { timeout: "15 minutes", excludeTestServices: true })((it) => {
    it.effect(
      "npm install -g @testbed/cli, then testbed run quickstart.yaml in an empty directory (on Node 24 and on the oldest Node engines admits)",
      () =>
        Effect.gen(function* () {
          const registry = yield* Registry
          const { root, env } = registry.newHome("cli")
          yield* removeAfter(root)
          const work = join(root, "work")
          yield* npm(["install", "-g", "@testbed/cli"], work, env)

          // Installed from the registry, not linked to this checkout; and one copy of effect in the whole tree.
          const installed = join(root, "prefix/lib/node_modules")
          for (const name of readdirSync(join(installed, "@testbed")))
            assert.isTrue(
              relative(repo, realpathSync(join(installed, "@testbed", name))).startsWith(".."),
              `${name} resolves into the checkout`
            )
          assert.deepStrictEqual(copiesOf(join(root, "prefix/lib"), "effect").length, 1, "copies of effect")

          // What consumers get: no published declaration names an internal type that no public module exports.
          const libraries = join(installed, "@testbed/cli/node_modules/@testbed")
          const hidden = readdirSync(libraries).flatMap((name) => {
            const dir = join(libraries, name)
            return hiddenTypeProblems({ dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) })
          })
          assert.deepStrictEqual(hidden, [])

          const versionLine = yield* Process.run("testbed", ["--version"], { cwd: work, env })
          assert.strictEqual(versionLine.stdout.trim(), `testbed v${version}`)

          copyFileSync(join(repo, "fixtures/experiments/quickstart.yaml"), join(work, "quickstart.yaml"))
          const run = yield* Process.run("testbed", ["run", "quickstart.yaml", "--plain"], {
            cwd: work,
            env,
            timeoutMs: 5 * 60_000
          })
          assert.strictEqual(run.code, 0, run.output)
          const runs = readdirSync(join(work, "outputs"))
          assert.strictEqual(runs.length, 1)
          const runDir = join(work, "outputs", runs[0] ?? "")
          const summary = JSON.parse(readFileSync(join(runDir, "experiment_summary.json"), "utf8"))
          assert.strictEqual(summary.tests.total, 4)
          assert.strictEqual(summary.tests.passed, 4)
          for (const report of ["report.html", "EXPERIMENT_REPORT.md", "junit.xml", "ctrf-report.json", "events.jsonl"])
            assert.include(readdirSync(runDir), report)

          // The oldest Node that `engines` admits runs it too (the npm package `node`, into a directory of its own).
          const floor = /(\d+\.\d+\.\d+)/.exec(engines)?.[1]
          assert.isDefined(floor, `engines.node ${engines} names no version`)
          yield* npm(["install", "--prefix", join(root, "oldest-node"), `node@${floor}`], work, env)
          const oldest = join(root, "oldest-node/node_modules/node/bin/node")
          const onOldest = yield* Process.run(
            oldest,
            [join(installed, "@testbed/cli/dist/bin.js"), "run", "quickstart.yaml", "--plain"],
            {
              cwd: work,
              env: { ...env, PATH: [dirname(oldest), env.PATH].join(delimiter) },
              timeoutMs: 5 * 60_000
            }
          )
          assert.strictEqual(onOldest.code, 0, onOldest.output)
          assert.include(onOldest.stdout, "4 passed")
        }),
      { timeout: 15 * 60_000 }
    )

    it.effect(
      "a consumer project installs @testbed/replay, @testbed/events and effect and runs their README examples",
      () =>
        Effect.gen(function* () {
          const registry = yield* Registry
          const { root, env } = registry.newHome("consumer")
          yield* removeAfter(root)
          const dir = consumerProject(root)
          yield* npm(
            ["install", "@testbed/replay", "@testbed/events", "effect", "@effect/platform-node", "@types/node@24"],
            dir,
            env
          )
          assert.deepStrictEqual(copiesOf(dir, "effect").length, 1, "copies of effect")
          const examples = readmeExamples("replay", "events")
          yield* Readmes.runAll(examples, { dir, env, node })
          yield* typecheck(dir, true)
        }),
      { timeout: 10 * 60_000 }
    )

    it.effect(
      "a consumer on effect 4.0.6 gets one copy of effect, and @testbed/events and @testbed/reports work with it",
      () =>
        Effect.gen(function* () {
          const registry = yield* Registry
          const { root, env } = registry.newHome("effect406")
          yield* removeAfter(root)
          const dir = consumerProject(root)
          // @effect/platform-node 4.0.6 accepts platform-node-shared 4.1, which needs effect 4.1: pinned alike.
          yield* npm(
            [
              "install",
              "@testbed/events",
              "@testbed/reports",
              "effect@4.0.6",
              "@effect/platform-node@4.0.6",
              "@effect/platform-node-shared@4.0.6",
              "@types/node@24"
            ],
            dir,
            env
          )
          assert.deepStrictEqual(copiesOf(dir, "effect"), ["4.0.6"])
          yield* Readmes.runAll(readmeExamples("events", "reports"), { dir, env, node })
          // Declarations included: the packages' types hold against effect 4.0.6's.
          yield* typecheck(dir, false)
        }),
      { timeout: 10 * 60_000 }
    )
  })
})
