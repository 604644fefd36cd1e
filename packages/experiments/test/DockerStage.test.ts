// The stage the docker environment asks for, per service: a plugin's image with a build context is built from that
// context when the engine lacks it (the README's tutorial depends on it on a fresh engine); an image built from a
// rootfs is used as it is. Pure: no engine. DockerEnvironment.test.ts brings such stages up on the real engine.
import { assert, describe, it } from "@effect/vitest"
import { Builtins, type ServicePlugin } from "@testbed/plugins"
import { stageOf } from "../src/DockerEnvironment.ts"

const service = (key: string, docker: NonNullable<ServicePlugin.ServicePlugin["docker"]>) => ({
  key,
  plugin: { ...Builtins.nodeEcho, docker },
  source: "/lab/plugins/echo.mjs"
})

const nodesOf = (result: ReturnType<typeof stageOf>) => {
  if (typeof result === "string") throw new Error(result)
  return (result.stage as { readonly nodes: Record<string, { image?: string; build?: { context: string } }> }).nodes
}

const options = {
  name: "exp-00000001",
  prefix: "10.200.1",
  outputDir: "/lab/out",
  resolve: (from: string, to: string) => new URL(to, `file://${from}`).pathname
}

describe("DockerEnvironment.stageOf", () => {
  it("a plugin's image with a build context keeps both: the stage builds the tag when it is missing", () => {
    const nodes = nodesOf(stageOf([service("server", { image: "tutorial/busybox:1", build: "../image" })], options))
    assert.deepStrictEqual([nodes.server?.image, nodes.server?.build?.context], ["tutorial/busybox:1", "/lab/image"])
  })

  it("a build context alone, an image alone, and an image built from a rootfs", () => {
    const nodes = nodesOf(
      stageOf(
        [
          service("built", { build: "../image" }),
          service("pulled", { image: "busybox:fixture" }),
          service("rootfs", { rootfs: { programs: ["busybox"] }, build: "../image" })
        ],
        { ...options, images: new Map([["rootfs", "testbed/echo:0123456789abcdef"]]) }
      )
    )
    assert.deepStrictEqual(nodes.built?.build?.context, "/lab/image")
    assert.isUndefined(nodes.built?.image)
    assert.deepStrictEqual([nodes.pulled?.image, nodes.pulled?.build], ["busybox:fixture", undefined])
    assert.deepStrictEqual([nodes.rootfs?.image, nodes.rootfs?.build], ["testbed/echo:0123456789abcdef", undefined])
  })

  it("a service whose plugin names no image, context or rootfs is refused by name", () => {
    assert.match(String(stageOf([service("bare", {})], options)), /^bare: plugin node-echo has no docker image/)
  })
})
