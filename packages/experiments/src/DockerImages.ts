/**
 * Images of implementations for the docker environment, built offline from this machine's files (no registry):
 * a plugin's `docker.rootfs` becomes `FROM scratch` plus a root file system (see internal/rootfs.ts), tagged
 * `testbed/<implementation>:<first 16 hex digits of the inputs' hash>` and labelled with the whole hash. An image
 * whose tag exists is used as it is; a changed input (a package upgraded, a file edited) is a new tag, built once.
 * `prepare` builds every image a run needs before its tests, so build time is apart from test time
 * (`environment.image_ready` events, and `imagesBuilt` in the run's `experiment.resources`).
 */
import { EventBus } from "@testbed/events"
import { Programs, type ServicePlugin } from "@testbed/plugins"
import { Docker } from "@testbed/stages"
import { Clock, Effect, FileSystem, Layer, Option } from "effect"
import type { TestPlan } from "./Plan.ts"
import * as Rootfs from "./internal/rootfs.ts"

export { RootfsFailed } from "./internal/rootfs.ts"

/** Labels every image built here carries; `testbed.inputs` is the full hash of its inputs. */
export const labels = { image: "testbed.image", inputs: "testbed.inputs", implementation: "testbed.implementation" }

export const tagOf = (implementation: string, hash: string): string => `testbed/${implementation}:${hash.slice(0, 16)}`

/**
 * The engine the docker environment uses: the one the context gives (a unit test's `Docker.layerMemory`), else the
 * engine DOCKER_HOST names, connected only now so that a run that never uses docker never loads its client.
 */
export const engineLayer: Effect.Effect<typeof Docker.Docker.layer> = Effect.map(
  Effect.serviceOption(Docker.Docker),
  Option.match({ onNone: () => Docker.Docker.layer, onSome: (given) => Layer.succeed(Docker.Docker, given) })
)

export interface Ready {
  readonly image: string
  readonly built: boolean
  readonly durationMs: number
}

const build = Effect.fn("DockerImages.build")(function* (manifest: Rootfs.Manifest, tag: string) {
  const fs = yield* FileSystem.FileSystem
  const docker = yield* Docker.Docker
  const dir = yield* fs
    .makeTempDirectoryScoped({ prefix: "testbed-rootfs-" })
    .pipe(
      Effect.mapError(
        (error) => new Rootfs.RootfsFailed({ implementation: manifest.implementation, reason: error.message })
      )
    )
  yield* Rootfs.writeContext(manifest, dir)
  yield* docker.buildImage({
    context: dir,
    src: ["Dockerfile", "rootfs"],
    dockerfile: "Dockerfile",
    tag,
    labels: {
      [labels.image]: "true",
      [labels.inputs]: manifest.hash,
      [labels.implementation]: manifest.implementation
    }
  })
}, Effect.scoped)

/**
 * The image of a plugin's root file system, built unless an image with the same inputs exists. Publishes
 * `environment.image_ready` when it built one, or always with `announce` (the run's own preparation).
 */
/**
 * The spec as this machine can build it: a prebuild whose toolchain is missing becomes an image that says so
 * (`TB_UNSUPPORTED_HERE`), so the cells are `unsupported` naming the program, never a false failure.
 */
export const buildableHere = (spec: ServicePlugin.RootfsSpec): ServicePlugin.RootfsSpec => {
  const absent = Programs.missing(spec.prebuild?.requires ?? [])
  if (absent.length === 0) return spec
  const { prebuild: _, ...rest } = spec
  return {
    ...rest,
    env: { ...spec.env, TB_UNSUPPORTED_HERE: `${absent.join(", ")} not installed on this machine (builds the image)` }
  }
}

export const ensure = Effect.fn("DockerImages.ensure")(function* (
  implementation: string,
  spec: ServicePlugin.RootfsSpec,
  options: { readonly announce?: boolean } = {}
) {
  const docker = yield* Docker.Docker
  const started = yield* Clock.currentTimeMillis
  const manifest = yield* Rootfs.manifest(implementation, buildableHere(spec))
  const image = tagOf(implementation, manifest.hash)
  const built = !(yield* docker.imageExists(image))
  if (built) yield* build(manifest, image)
  const durationMs = (yield* Clock.currentTimeMillis) - started
  const bus = yield* Effect.serviceOption(EventBus.EventBus)
  if (Option.isSome(bus) && (built || options.announce === true)) {
    yield* bus.value.emit({
      type: "environment.image_ready",
      entityId: image,
      data: { implementation, image, inputsHash: manifest.hash, built, durationMs, packages: manifest.packages }
    })
  }
  return { image, built, durationMs } satisfies Ready
})

/** The plugins with a root file system among the services of tests run in the docker environment, each once. */
export const rootfsPlugins = (tests: ReadonlyArray<TestPlan>): ReadonlyArray<ServicePlugin.ServicePlugin> => {
  const found = new Map<string, ServicePlugin.ServicePlugin>()
  for (const test of tests) {
    if (test.environment !== "docker") continue
    for (const service of test.services) {
      if (service.plugin.docker?.rootfs !== undefined) found.set(service.plugin.name, service.plugin)
    }
  }
  return [...found.values()]
}

/**
 * Builds, before the tests, the images the run's docker tests need; returns how many were built (undefined when
 * no test needs one). A failure here is not the run's: the tests that need the image fail in their setup, saying why.
 */
export const prepare = Effect.fn("DockerImages.prepare")(function* (tests: ReadonlyArray<TestPlan>) {
  const plugins = rootfsPlugins(tests)
  if (plugins.length === 0) return undefined
  const engine = yield* engineLayer
  const results = yield* Effect.forEach(plugins, (plugin) =>
    Effect.result(ensure(plugin.name, plugin.docker!.rootfs!, { announce: true }).pipe(Effect.provide(engine)))
  )
  return results.filter((result) => result._tag === "Success" && result.success.built).length
})
