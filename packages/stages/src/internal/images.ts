// Images a stage needs: present ones are used as they are, missing ones are built from their context — never
// pulled. A context folder may list host files to add at build time (`testbed.context.yaml`: `hostFiles:`),
// so binaries such as busybox-static are copied from the host instead of being committed.
import { Effect, FileSystem, Path, Schema } from "effect"
import * as Yaml from "yaml"
import { Docker } from "../Docker.ts"
import type { Loaded } from "../Stage.ts"
import { ImageBuildFailed, ImageNotFound } from "../StageError.ts"
import { imageOf } from "./plan.ts"

const ContextFile = Schema.Struct({ hostFiles: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)) })

/** Builds one image from a context directory, adding the host files it asks for. */
export const build = Effect.fn("Images.build")(function* (options: {
  readonly context: string
  readonly dockerfile: string
  readonly tag: string
}) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const docker = yield* Docker
  const fail = (reason: string) => new ImageBuildFailed({ image: options.tag, context: options.context, reason })
  const dir = yield* fs
    .makeTempDirectoryScoped({ prefix: "testbed-build-" })
    .pipe(Effect.mapError((e) => fail(e.message)))
  yield* fs.copy(options.context, dir, { overwrite: true }).pipe(Effect.mapError((e) => fail(e.message)))
  const contextFile = path.join(dir, "testbed.context.yaml")
  if (yield* fs.exists(contextFile).pipe(Effect.orElseSucceed(() => false))) {
    const text = yield* fs.readFileString(contextFile).pipe(Effect.mapError((e) => fail(e.message)))
    const spec = yield* Effect.try({ try: () => Yaml.parse(text) as unknown, catch: (e) => fail(String(e)) }).pipe(
      Effect.flatMap(Schema.decodeUnknownEffect(ContextFile)),
      Effect.mapError((e) => fail(`testbed.context.yaml: ${e.message}`))
    )
    for (const [target, source] of Object.entries(spec.hostFiles ?? {})) {
      if (target.includes("..") || path.isAbsolute(target))
        return yield* fail(`hostFiles target ${target} leaves the context`)
      yield* fs
        .copyFile(source, path.join(dir, target))
        .pipe(Effect.mapError((e) => fail(`host file ${source}: ${e.message}`)))
    }
  }
  yield* docker.buildImage({
    context: dir,
    src: ["."],
    dockerfile: options.dockerfile,
    tag: options.tag,
    labels: { "testbed.image": "true" }
  })
}, Effect.scoped)

/** One tag: used when present (unless `rebuild`), else built from its context, else `ImageNotFound`. */
const ensureOne = Effect.fn("Images.ensureOne")(function* (
  tag: string,
  node: string,
  context: string | undefined,
  spec: { readonly dockerfile?: string } | undefined,
  rebuild: boolean
) {
  const docker = yield* Docker
  if (!rebuild || context === undefined) {
    if (yield* docker.imageExists(tag)) return
  }
  if (context === undefined) return yield* new ImageNotFound({ image: tag, node })
  yield* build({ context, dockerfile: spec?.dockerfile ?? "Dockerfile", tag })
})

/** Makes sure every node's image exists, building each missing tag once; `rebuild` builds all that can be. */
export const ensure = Effect.fn("Images.ensure")(function* (loaded: Loaded, rebuild: boolean) {
  const path = yield* Path.Path
  const byTag = new Map<
    string,
    { readonly node: string; readonly build: { context: string; dockerfile?: string } | undefined }
  >()
  for (const [name, node] of Object.entries(loaded.stage.nodes)) {
    const tag = imageOf(loaded.stage.name, name, node)
    const prior = byTag.get(tag)
    if (!prior || (prior.build === undefined && node.build !== undefined))
      byTag.set(tag, { node: name, build: node.build })
  }
  yield* Effect.forEach(
    [...byTag],
    ([tag, { node, build: spec }]) =>
      ensureOne(tag, node, spec === undefined ? undefined : path.resolve(loaded.baseDir, spec.context), spec, rebuild),
    { concurrency: 2, discard: true }
  )
})
