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
})
