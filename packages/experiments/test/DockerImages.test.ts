// Integration: images built offline from this machine's files on the real engine — reused while their inputs are
// the same, rebuilt when one changes. Each test removes the images it built (tags unique to the test).
import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { EventBus } from "@testbed/events"
import { Docker } from "@testbed/stages"
import { Effect, FileSystem, Layer, Stream } from "effect"
import * as DockerImages from "../src/DockerImages.ts"
import { docker, hasDocker } from "./docker.ts"
import { provide } from "./support.ts"

const layer = Layer.mergeAll(Docker.Docker.layer, EventBus.EventBus.layer)

/** The images a test adds to this set are removed when it ends (their tags are unique to the test). */
const removedAtEnd = Effect.gen(function* () {
  const built = new Set<string>()
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const image of built) docker(["image", "rm", "--force", image])
    })
  )
  return built
})

describe.skipIf(!hasDocker && process.env.CI === undefined)("DockerImages (real engine)", () => {
  it.live(
    "a second build with the same inputs reuses the image; a changed file is a new image, built once",
    () =>
      provide(
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-images-" })
          const implementation = `test-rootfs-${randomBytes(4).toString("hex")}`
          const file = `${dir}/greeting.txt`
          writeFileSync(file, "hello\n")
          const built = yield* removedAtEnd
          const bus = yield* EventBus.EventBus
          const events = yield* bus.subscribe
          const spec = { programs: [], files: [file] }
          const first = yield* DockerImages.ensure(implementation, spec)
          built.add(first.image)
          assert.isTrue(first.built)
          const second = yield* DockerImages.ensure(implementation, spec)
          assert.isFalse(second.built)
          assert.strictEqual(second.image, first.image)
          // The image is labelled with its inputs' whole hash, and holds the file and a working busybox shell.
          const label = docker([
            "image",
            "inspect",
            "--format",
            '{{index .Config.Labels "testbed.inputs"}}',
            first.image
          ])
          assert.isTrue(first.image.endsWith(`:${label.slice(0, 16)}`))
          const run = (image: string) =>
            docker(["run", "--rm", "--network", "none", image, "/bin/sh", "-c", `cat ${file} | tr a-z A-Z`])
          assert.strictEqual(run(first.image), "HELLO")
          writeFileSync(file, "changed\n")
          const third = yield* DockerImages.ensure(implementation, spec)
          built.add(third.image)
          assert.isTrue(third.built)
          assert.notStrictEqual(third.image, first.image)
          assert.strictEqual(run(third.image), "CHANGED")
          // Only builds publish `environment.image_ready` unless asked (the run's preparation announces reuse too).
          yield* DockerImages.ensure(implementation, spec, { announce: true })
          const ready = yield* events.pipe(
            Stream.filter((event) => event.type === "environment.image_ready"),
            Stream.take(3),
            Stream.runCollect
          )
          assert.deepStrictEqual(
            ready.map((event) => (event.type === "environment.image_ready" ? event.data.built : undefined)),
            [true, true, false]
          )
        }).pipe(Effect.provide(layer))
      ),
    180_000
  )

  it.live(
    "a prebuild runs here before the image: its directory is in the image, and what it built is in the tag",
    () =>
      provide(
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "testbed-images-" })
          const implementation = `test-prebuild-${randomBytes(4).toString("hex")}`
          const built = yield* removedAtEnd
          writeFileSync(`${dir}/source.txt`, "one\n")
          // The "build": its output directory says which source it came from; the log line goes to stderr.
          const script = `echo building >&2; mkdir -p '${dir}/out/peer-1'; tr a-z A-Z < '${dir}/source.txt' > '${dir}/out/peer-1/peer'; echo '${dir}/out/peer-1'`
          const spec = { programs: [], prebuild: { script, into: "/opt/cache" } }
          const first = yield* DockerImages.ensure(implementation, spec)
          built.add(first.image)
          const run = (image: string) =>
            docker(["run", "--rm", "--network", "none", image, "/bin/sh", "-c", "cat /opt/cache/peer-1/peer"])
          assert.strictEqual(run(first.image), "ONE")
          assert.isFalse((yield* DockerImages.ensure(implementation, spec)).built)
          writeFileSync(`${dir}/source.txt`, "two\n")
          const second = yield* DockerImages.ensure(implementation, spec)
          built.add(second.image)
          assert.isTrue(second.built)
          assert.notStrictEqual(second.image, first.image)
          assert.strictEqual(run(second.image), "TWO")
        }).pipe(Effect.provide(layer))
      ),
    180_000
  )

  it.live("a failed or silent prebuild is a typed error with its last lines, and nothing is built", () =>
    provide(
      Effect.gen(function* () {
        const failed = yield* Effect.flip(
          DockerImages.ensure("test-prebuild-failed", {
            programs: [],
            prebuild: { script: "echo 'main.go:3: syntax error' >&2; exit 1", into: "/opt/cache" }
          })
        )
        assert.strictEqual(failed._tag, "RootfsFailed")
        assert.include(failed.message, "main.go:3: syntax error")
        // A directory named "/" (or anything not absolute) has no name to place in the image: refused.
        const root = yield* Effect.flip(
          DockerImages.ensure("test-prebuild-root", { programs: [], prebuild: { script: "echo /", into: "/opt" } })
        )
        assert.include(root.message, "prebuild printed no absolute directory")
      }).pipe(Effect.provide(layer))
    )
  )

  it.live("a program missing on this machine is a typed error naming it, and nothing is built", () =>
    provide(
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          DockerImages.ensure("test-rootfs-missing", { programs: ["testbed-no-such-program"] })
        )
        assert.strictEqual(error._tag, "RootfsFailed")
        assert.include(error.message, "testbed-no-such-program is not installed on this machine")
      }).pipe(Effect.provide(layer))
    )
  )
})

describe("DockerImages.buildableHere", () => {
  it("a prebuild whose toolchain is missing here becomes an image that says unsupported, naming the program", () => {
    const spec = {
      programs: [],
      env: { TB_PREBUILT_HERE: "1" },
      prebuild: { script: "echo /nowhere", into: "/opt/x", requires: ["sh", "testbed-no-such-toolchain"] }
    }
    const here = DockerImages.buildableHere(spec)
    assert.isUndefined(here.prebuild)
    assert.strictEqual(
      here.env?.TB_UNSUPPORTED_HERE,
      "testbed-no-such-toolchain not installed on this machine (builds the image)"
    )
    const present = { ...spec, prebuild: { ...spec.prebuild, requires: ["sh"] } }
    assert.strictEqual(DockerImages.buildableHere(present), present)
  })
})
