/**
 * What goes into an experiment's bundle, found on the coordinator: the experiment's directory, its plugin
 * directories (`paths.plugins` and `--plugins`), and what its file names relative to the experiment (replay step
 * `script`s with their directories, fleet `secret_file`s, `{{ experiment_dir }}/…` in any value), each a file or a
 * directory tree. Paths keep their layout under the roots' common ancestor, so `{{ experiment_dir }}/../replay/x`
 * and `paths.plugins: ../plugins` resolve on a runner as here. Bounded: hidden directories, `node_modules` and the
 * run's output directory are left out; a symbolic link is followed only to a file inside the tree it is in; the
 * files' sizes are summed before anything is read, and more than the limit fails with the biggest files named.
 */
import { ExperimentConfig } from "@testbed/experiments"
import { Effect, FileSystem, Option, Path, type PlatformError } from "effect"
import * as Bundle from "./Bundle.ts"
import * as BundleStore from "./internal/bundleStore.ts"

export interface Options {
  /** The experiment file (absolute). */
  readonly file: string
  /** `--plugins` directories (absolute). */
  readonly pluginDirectories: ReadonlyArray<string>
  /** Directories never bundled (the run's output directory). */
  readonly exclude: ReadonlyArray<string>
  readonly maxBytes: number
}

interface Found {
  readonly source: string
  readonly size: number
  readonly executable: boolean
}

export interface Collected {
  readonly bytes: Uint8Array
  readonly sha256: string
  readonly header: Bundle.Header
  /** Links left out: they lead outside the tree they are in, or to a directory. */
  readonly skipped: ReadonlyArray<string>
}

const templated = /\{\{\s*experiment_dir\s*\}\}\/([^\s"'{}]+)/g

/** Paths the experiment's values name relative to its directory, with the key that named each. */
const keyedReferences = (config: { readonly tests?: unknown; readonly matrices?: unknown }) => {
  const found: Array<{ readonly path: string; readonly key: string | undefined }> = []
  const visit = (value: unknown, key: string | undefined): void => {
    if (typeof value === "string") {
      for (const match of value.matchAll(templated)) found.push({ path: match[1]!, key })
      const plain = !value.includes("{{") && !value.startsWith("/")
      if (plain && (key === "script" || key === "secret_file") && value !== "") found.push({ path: value, key })
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item, undefined)
    } else if (typeof value === "object" && value !== null) {
      for (const [name, item] of Object.entries(value)) visit(item, name)
    }
  }
  visit(config.tests, undefined)
  visit(config.matrices, undefined)
  return found
}

/** Paths the experiment's values name relative to its directory (only those: absolute ones are the runner's). */
export const references = (config: {
  readonly tests?: unknown
  readonly matrices?: unknown
}): ReadonlyArray<string> => [...new Set(keyedReferences(config).map((reference) => reference.path))]

/**
 * The directories of the replay scripts it names (a `script` of a replay step or of the replay plugin): a script's
 * responses may be in `blobs/` beside it and its externals anywhere under its directory (@testbed/replay's BlobStore
 * and ScriptFiles), and a runner given the script alone failed with "blob … not found".
 */
export const scriptDirectories = (config: {
  readonly tests?: unknown
  readonly matrices?: unknown
}): ReadonlyArray<string> => [
  ...new Set(
    keyedReferences(config).flatMap(({ path, key }) =>
      key === "script" && path.endsWith(".json") ? [path.replace(/\/?[^/]*$/, "") || "."] : []
    )
  )
]

const inside = (path: Path.Path, dir: string, candidate: string) =>
  candidate === dir || candidate.startsWith(dir.endsWith(path.sep) ? dir : `${dir}${path.sep}`)

/** The files of one root (a file or a directory tree), by real path, within the entry bound. */
const walk = Effect.fn("BundleSources.walk")(function* (
  root: string,
  exclude: ReadonlyArray<string>,
  found: Map<string, Found>,
  skipped: Array<string>
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  // Untraced: one call per file and directory, so a span each would flood a run's trace.
  const visit: (at: string) => Effect.Effect<void, Bundle.BundleTooLarge> = Effect.fnUntraced(function* (at: string) {
    const real = yield* Effect.option(fs.realPath(at))
    const info = yield* Effect.option(fs.stat(at))
    if (Option.isNone(real) || Option.isNone(info)) return
    const linked = real.value !== at
    if (linked && (!inside(path, root, real.value) || info.value.type !== "File")) return void skipped.push(at)
    if (info.value.type === "File") {
      if (found.size >= Bundle.maxEntries) return yield* tooMany(found)
      const executable = (info.value.mode & 0o111) !== 0
      return void found.set(at, { source: real.value, size: Number(info.value.size), executable })
    }
    if (info.value.type !== "Directory" || exclude.some((dir) => inside(path, dir, at))) return
    const names = yield* fs.readDirectory(at).pipe(Effect.orElseSucceed(() => []))
    for (const name of [...names].sort()) {
      if (name === "node_modules" || (name.startsWith(".") && at !== root)) {
        const child = yield* Effect.option(fs.stat(path.join(at, name)))
        if (Option.isSome(child) && child.value.type === "Directory") continue
      }
      yield* visit(path.join(at, name))
    }
  })
  yield* visit(root)
})

const tooMany = (found: ReadonlyMap<string, Found>) =>
  Effect.fail(
    new Bundle.BundleTooLarge({
      bytes: [...found.values()].reduce((sum, file) => sum + file.size, 0),
      limit: Number.NaN,
      files: found.size + 1,
      biggest: []
    })
  )

/** The roots' real paths: the experiment's directory, its plugin directories, and what it references. */
const roots = Effect.fn("BundleSources.roots")(function* (options: Options) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const config = yield* ExperimentConfig.load(options.file)
  const dir = path.dirname(options.file)
  const configured = config.paths?.plugins
  const plugins = configured === undefined ? [] : typeof configured === "string" ? [configured] : configured
  const named = [
    ...plugins.map((plugin) => path.resolve(dir, plugin)),
    ...references(config).map((reference) => path.resolve(dir, reference)),
    ...scriptDirectories(config).map((scripts) => path.resolve(dir, scripts))
  ]
  const real = (at: string) => Effect.option(fs.realPath(at))
  const all = [dir, ...named, ...options.pluginDirectories]
  const resolved = yield* Effect.forEach(all, real)
  return {
    experimentDir: Option.getOrElse(resolved[0]!, () => dir),
    // A reference that does not exist fails on the runner as it would here.
    roots: resolved.flatMap((root) => (Option.isSome(root) ? [root.value] : [])),
    plugins: options.pluginDirectories.map((_, i) => resolved[1 + named.length + i]!)
  }
})

/** The longest directory every path is in. */
const commonAncestor = (path: Path.Path, paths: ReadonlyArray<string>) =>
  paths.reduce((common, at) => {
    let dir = common
    while (!inside(path, dir, at)) dir = path.dirname(dir)
    return dir
  })

/** Collects, checks the size and packs the bundle of an experiment. */
export const collect = Effect.fn("BundleSources.collect")(function* (options: Options) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const { experimentDir, roots: all, plugins } = yield* roots(options)
  const unreadable = (at: string) => (error: PlatformError.PlatformError) =>
    new Bundle.BundleSourceUnreadable({ path: at, reason: error.message })
  const experiment = yield* fs.realPath(options.file).pipe(Effect.mapError(unreadable(options.file)))
  const found = new Map<string, Found>()
  const skipped: Array<string> = []
  const exclude = options.exclude.map((dir) => path.resolve(dir))
  for (const root of all) yield* walk(root, exclude, found, skipped)
  found.set(experiment, found.get(experiment) ?? { source: experiment, size: 0, executable: false })
  const base = commonAncestor(path, [experimentDir, ...all, experiment])
  const relative = (at: string) => path.relative(base, at).split(path.sep).join("/")
  const files = [...found.entries()].map(([at, file]) => ({ ...file, path: relative(at) }))
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const bytes = files.reduce((sum, file) => sum + file.size, 0)
  if (bytes > options.maxBytes) {
    const biggest = [...files].sort((a, b) => b.size - a.size).slice(0, 5)
    return yield* new Bundle.BundleTooLarge({
      bytes,
      limit: options.maxBytes,
      files: files.length,
      biggest: biggest.map((file) => ({ path: path.join(base, file.path), size: file.size }))
    })
  }
  const contents = yield* Effect.forEach(files, (file) =>
    fs.readFile(file.source).pipe(Effect.mapError(unreadable(file.source)))
  )
  const header: Bundle.Header = {
    version: 1,
    experiment: relative(experiment),
    plugins: plugins.flatMap((plugin) => (Option.isSome(plugin) ? [relative(plugin.value)] : [])),
    entries: files.map((file, i) => ({
      path: file.path,
      size: contents[i]!.length,
      executable: file.executable,
      kind: "file" as const
    }))
  }
  const packed = Bundle.pack(header, contents)
  return { bytes: packed, sha256: Bundle.sha256(packed), header, skipped } satisfies Collected
})

/**
 * The coordinator's side: collects the bundle, stores it for the run (once: it is content-addressed) and marks the
 * run finished when the caller's scope closes. Returns its sha256, which every request of the run carries.
 */
export const publish = Effect.fn("BundleSources.publish")(function* (runId: string, options: Options) {
  const collected = yield* collect(options)
  if (collected.skipped.length > 0) {
    yield* Effect.logWarning(
      `not bundled (links to a directory or out of their tree): ${collected.skipped.slice(0, 10).join(", ")}`
    )
  }
  yield* BundleStore.put(runId, collected.sha256, collected.bytes)
  yield* Effect.addFinalizer(() => Effect.ignore(BundleStore.finished(runId)))
  return collected
})
