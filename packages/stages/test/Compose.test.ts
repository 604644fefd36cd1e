// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are compose files, where ${VAR} is the syntax under test
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Compose from "../src/Compose.ts"
import * as Stage from "../src/Stage.ts"
import { shellWords } from "../src/internal/shellWords.ts"
import { fixtures } from "./paths.ts"

const withDir = <A, E, R>(files: Record<string, string>, body: (dir: string) => Effect.Effect<A, E, R>) => {
  const dir = mkdtempSync(join(tmpdir(), "testbed-compose-"))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return body(dir).pipe(Effect.ensuring(Effect.sync(() => rmSync(dir, { recursive: true, force: true }))))
}

describe("Compose", () => {
  it.effect("the compose form of routing-lab is the same stage as its stage form", () =>
    Effect.gen(function* () {
      const composed = yield* Compose.load(join(fixtures, "stages", "routing-lab-compose", "docker-compose.yml"), "x")
      const stage = yield* Stage.decodeYaml(
        readFileSync(join(fixtures, "stages", "routing-lab", "stage.yaml"), "utf8"),
        "s"
      )
      assert.strictEqual(composed.stage.name, "routing-lab")
      assert.deepStrictEqual(composed.stage.networks, stage.networks)
      for (const name of ["client1", "client2"] as const) {
        const c = composed.stage.nodes[name]
        const s = stage.nodes[name]
        assert.deepStrictEqual(c?.networks, s?.networks)
        assert.deepStrictEqual(c?.capabilities, s?.capabilities)
        assert.deepStrictEqual(c?.command, s?.command)
        assert.strictEqual(c?.tty, true)
        assert.strictEqual(c?.image, s?.image)
        // Paths written in common.yml are resolved against common.yml, as compose does.
        assert.strictEqual(c?.build?.context, join(fixtures, "images", "busybox"))
        assert.deepStrictEqual(c?.mounts, [
          { source: join(fixtures, "stages", "routing-lab", "src"), target: "/root/src", readOnly: false }
        ])
      }
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("unsupported keys are reported by their paths, not ignored", () =>
    withDir(
      {
        "docker-compose.yml": [
          "version: '3'",
          "volumes: { data: {} }",
          "x-notes: ignored on purpose",
          "services:",
          "  web:",
          "    image: busybox",
          "    ports: ['8080:80']",
          "    privileged: true",
          "    volumes: ['data:/data', './src:/src']",
          "    networks: { lan: { ipv4_address: 10.1.2.3, aliases: [w] } }",
          "networks:",
          "  lan: { driver: overlay, ipam: { config: [{ subnet: 10.1.2.0/24 }] } }"
        ].join("\n")
      },
      (dir) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(Compose.load(join(dir, "docker-compose.yml"), "lab"))
          assert.strictEqual(error._tag, "ComposeUnsupported")
          if (error._tag !== "ComposeUnsupported") return
          assert.deepStrictEqual([...error.keys].sort(), [
            "networks.lan.driver (only bridge)",
            "services.web.networks.lan.aliases",
            "services.web.ports",
            "services.web.privileged",
            "services.web.volumes[0] (only bind mounts of host paths)",
            "volumes"
          ])
          assert.include(error.message, "services.web.ports")
        })
    ).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("string commands, list environments, default network and extends in the same file", () =>
    withDir(
      {
        "compose.yaml": [
          "services:",
          "  base:",
          "    image: busybox",
          "    environment: [A=1, B=2]",
          "    cap_add: [NET_ADMIN]",
          "  web:",
          "    extends: base",
          "    command: sh -c 'echo \"hi there\"'",
          "    environment: { B: '3' }",
          "    cap_add: [NET_RAW]"
        ].join("\n")
      },
      (dir) =>
        Effect.gen(function* () {
          const { stage } = yield* Compose.load(join(dir, "compose.yaml"), "lab")
          const web = stage.nodes.web
          assert.deepStrictEqual(web?.command, ["sh", "-c", 'echo "hi there"'])
          assert.deepStrictEqual(web?.env, { A: "1", B: "3" })
          assert.deepStrictEqual(web?.capabilities, ["NET_ADMIN", "NET_RAW"])
          assert.deepStrictEqual(web?.networks, [{ network: "default" }])
          assert.deepStrictEqual(stage.networks, { default: {} })
        })
    ).pipe(Effect.provide(NodeServices.layer))
  )

  it("splits command strings like a POSIX shell", () => {
    assert.deepStrictEqual(shellWords(`a "b c" 'd "e"' f\\ g ""`), ["a", "b c", 'd "e"', "f g", ""])
  })

  it.effect("pyroute stage1 imports as it is: $PYROUTE_SRC_DIR from .env or the environment, bridge names kept", () =>
    Effect.gen(function* () {
      const file = join(fixtures, "stages", "pyroute-stage1", "docker-compose.yml")
      const fromDotEnv = yield* Compose.load(file, "pyroute-stage1", { environment: {} })
      const src = join(fixtures, "stages", "routing-lab", "src")
      assert.deepStrictEqual(fromDotEnv.stage.nodes.client1?.mounts, [
        { source: src, target: "/~/src", readOnly: false }
      ])
      assert.deepStrictEqual(fromDotEnv.stage.nodes.client2?.mounts, [
        { source: src, target: "/~/src", readOnly: false }
      ])
      assert.deepStrictEqual(fromDotEnv.stage.nodes.client1?.networks, [{ network: "net1", address: "10.231.11.10" }])
      assert.deepStrictEqual(fromDotEnv.stage.networks?.net1, {
        subnet: "10.231.11.0/24",
        driverOptions: { "com.docker.network.bridge.name": "net1" }
      })
      // The environment wins over .env, as with docker compose.
      const fromEnv = yield* Compose.load(file, "pyroute-stage1", {
        environment: { PYROUTE_SRC_DIR: "/srv/lab", CLIENT1_ADDRESS: "10.231.11.77" }
      })
      assert.strictEqual(fromEnv.stage.nodes.client1?.mounts?.[0]?.source, "/srv/lab")
      assert.deepStrictEqual(fromEnv.stage.nodes.client1?.networks, [{ network: "net1", address: "10.231.11.77" }])
    }).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("every substitution form of compose, and .env with quotes, comments and earlier variables", () =>
    withDir(
      {
        ".env": [
          "# a comment",
          "export BASE=/data",
          "DIR=${BASE}/lab # an inline comment",
          `QUOTED="two words \\"and\\" \\$HOME"`,
          "LITERAL='$NOT_EXPANDED'",
          "EMPTY="
        ].join("\n"),
        "compose.yaml": [
          "services:",
          "  web:",
          "    image: ${IMAGE:-busybox}",
          "    working_dir: $DIR",
          "    hostname: ${EMPTY:-fallback}",
          "    environment:",
          "      A: ${EMPTY-kept-empty}",
          "      B: ${UNSET-default}",
          "      C: ${DIR:+set}",
          "      D: ${EMPTY:+never}",
          "      E: cost $$5 and $${NAME}",
          "      F: ${UNSET:-${BASE}/nested}",
          "      G: ${QUOTED}",
          "      H: ${LITERAL}",
          "      I: ${DIR:?needs DIR}"
        ].join("\n")
      },
      (dir) =>
        Effect.gen(function* () {
          const { stage } = yield* Compose.load(join(dir, "compose.yaml"), "lab", { environment: { BASE: "/env" } })
          const web = stage.nodes.web
          assert.strictEqual(web?.image, "busybox")
          // BASE comes from the environment, which wins over .env, also inside .env's own values.
          assert.strictEqual(web?.workingDir, "/env/lab")
          assert.strictEqual(web?.hostname, "fallback")
          assert.deepStrictEqual(web?.env, {
            A: "",
            B: "default",
            C: "set",
            D: "",
            E: "cost $5 and ${NAME}",
            F: "/env/nested",
            G: 'two words "and" $HOME',
            H: "$NOT_EXPANDED",
            I: "/env/lab"
          })
        })
    ).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("an unset variable, a required one and a malformed reference are errors with their paths", () =>
    withDir(
      {
        "docker-compose.yml": [
          "services:",
          "  client1:",
          "    image: busybox",
          "    volumes: ['$SRC_DIR:/src']",
          "    environment: { MODE: '${MODE:?say which mode}', PRICE: '$5', OPEN: '${X' }"
        ].join("\n")
      },
      (dir) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(Compose.load(join(dir, "docker-compose.yml"), "lab", { environment: {} }))
          assert.strictEqual(error._tag, "StageInvalid")
          if (error._tag !== "StageInvalid") return
          assert.deepStrictEqual(
            error.problems.map((p) => p.path),
            [
              "services.client1.volumes[0]",
              "services.client1.environment.MODE",
              "services.client1.environment.PRICE",
              "services.client1.environment.OPEN"
            ]
          )
          assert.include(error.message, "variable SRC_DIR is not set")
          assert.include(error.message, "variable MODE is not set: say which mode")
          assert.include(error.message, "a lone $ at character 1 (write $$ for a literal $)")
          assert.include(error.message, "unclosed ${")
        })
    ).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("an empty file, a list, no services and a bad .env line are clear errors", () =>
    withDir(
      {
        "empty.yml": "",
        "list.yml": "- services\n- networks\n",
        "none.yml": "version: '3'\nservices: {}\n"
      },
      (dir) =>
        Effect.gen(function* () {
          const message = (file: string) =>
            Effect.flip(Compose.load(join(dir, file), "lab", { environment: {} })).pipe(Effect.map((e) => e.message))
          assert.include(yield* message("empty.yml"), "the file is empty")
          assert.include(yield* message("list.yml"), "expected a mapping (services:, networks:), found a list")
          assert.include(yield* message("none.yml"), "at services: no services")
          writeFileSync(join(dir, ".env"), 'GOOD=1\nnot a line\nBAD="open\n')
          const dotenv = yield* message("none.yml")
          assert.include(dotenv, ".env:2: expected KEY=value")
          assert.include(dotenv, ".env:3: no closing double quote")
        })
    ).pipe(Effect.provide(NodeServices.layer))
  )

  it.effect("~ in a volume is the home directory; driver_opts reach the stage and are checked", () =>
    withDir(
      {
        "compose.yaml": [
          "services:",
          "  a:",
          "    image: busybox",
          "    volumes: ['~/x:/x', '~:/home', './y:/y']",
          "    networks: [lan]",
          "networks:",
          "  lan:",
          "    driver_opts: { com.docker.network.bridge.name: lan0, com.docker.network.driver.mtu: '1400' }"
        ].join("\n"),
        "bad.yaml": [
          "services: { a: { image: busybox, networks: [one, two] } }",
          "networks:",
          "  one: { driver_opts: { com.docker.network.bridge.name: 'much-too-long-name' } }",
          "  two: { driver_opts: { other.option: x } }"
        ].join("\n")
      },
      (dir) =>
        Effect.gen(function* () {
          const { stage } = yield* Compose.load(join(dir, "compose.yaml"), "lab", { home: "/home/student" })
          assert.deepStrictEqual(
            stage.nodes.a?.mounts?.map((m) => m.source),
            ["/home/student/x", "/home/student", join(dir, "y")]
          )
          assert.deepStrictEqual(stage.networks?.lan?.driverOptions, {
            "com.docker.network.bridge.name": "lan0",
            "com.docker.network.driver.mtu": "1400"
          })
          const error = yield* Effect.flip(Compose.load(join(dir, "bad.yaml"), "lab"))
          assert.include(
            error.message,
            "networks.one.driverOptions.com.docker.network.bridge.name: a bridge name is 1–15"
          )
          assert.include(error.message, "networks.two.driverOptions")
        })
    ).pipe(Effect.provide(NodeServices.layer))
  )
})
